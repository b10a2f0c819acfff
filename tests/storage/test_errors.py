import errno
import pickle

import pytest

from kernel.errors import KernelError, has_code


def test_str_is_code_colon_message():
    err = KernelError("ENOENT", "no such file: /a")
    assert str(err) == "ENOENT: no such file: /a"
    assert err.code == "ENOENT" and err.errno == errno.ENOENT


def test_default_message_and_pickle_round_trip():
    err = KernelError("ENOSPC")
    assert str(err) == "ENOSPC: No space left on device"
    again = pickle.loads(pickle.dumps(err))
    assert again.code == "ENOSPC" and str(again) == str(err)


def test_unknown_code_is_rejected():
    with pytest.raises(ValueError):
        KernelError("EWHATEVER")


def test_from_os_error_keeps_code_not_path():
    err = KernelError.from_os_error(OSError(errno.EACCES, "Permission denied", "/host/secret"), "write block")
    assert err.code == "EACCES" and "/host/secret" not in str(err)
    assert has_code(err, "EACCES") and has_code(Exception("EACCES: x"), "EACCES")
