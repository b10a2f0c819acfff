"""Tests for the sandbox programs."""
