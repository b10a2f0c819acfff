/* A static probe the jail tests run inside the jail (compiled with gcc -static at test time).
 *   probe fds        the open fds, except the one reading /proc/self/fd
 *   probe tiocsti    try to push a byte into the terminal input of fd 0; prints the errno name
 *   probe winsz      TIOCGWINSZ on fd 0 (a control: ordinary ioctls still reach the driver)
 *   probe connect PORT   TCP connect to 127.0.0.1:PORT; prints "connected" or the errno name
 *   probe exit N / probe signal N   end with status N / die of signal N
 *   probe tty        isatty(0) and the window size; then on SIGWINCH the new size; then a line
 *                    read from stdin, reversed
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

static const char *name(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOTTY: return "ENOTTY";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENETUNREACH: return "ENETUNREACH";
    case EACCES: return "EACCES";
    case EIO: return "EIO";
    default: return strerror(e);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (!strcmp(argv[1], "fds")) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        if (!d) { perror("opendir"); return 1; }
        while ((e = readdir(d)))
            if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d)) printf("%s ", e->d_name);
        putchar('\n');
        return 0;
    }
    if (!strcmp(argv[1], "tiocsti")) {
        char c = 'x';
        puts(ioctl(0, TIOCSTI, &c) == 0 ? "injected" : name(errno));
        return 0;
    }
    if (!strcmp(argv[1], "winsz")) {
        struct winsize w;
        puts(ioctl(0, TIOCGWINSZ, &w) == 0 ? "ok" : name(errno));
        return 0;
    }
    if (!strcmp(argv[1], "connect") && argc > 2) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
        int s = socket(AF_INET, SOCK_STREAM, 0);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (s < 0) { puts(name(errno)); return 0; }
        puts(connect(s, (struct sockaddr *)&a, sizeof a) == 0 ? "connected" : name(errno));
        return 0;
    }
    if (!strcmp(argv[1], "tty")) {
        struct winsize w = {0};
        char line[256];
        sigset_t set;
        int sig;
        sigemptyset(&set);
        sigaddset(&set, SIGWINCH);
        sigprocmask(SIG_BLOCK, &set, NULL);
        ioctl(0, TIOCGWINSZ, &w);
        printf("isatty=%d rows=%d cols=%d\n", isatty(0), w.ws_row, w.ws_col);
        fflush(stdout);
        sigwait(&set, &sig);
        ioctl(0, TIOCGWINSZ, &w);
        printf("winch rows=%d cols=%d\n", w.ws_row, w.ws_col);
        fflush(stdout);
        if (fgets(line, sizeof line, stdin)) {
            size_t n = strcspn(line, "\n");
            printf("reversed=");
            while (n--) putchar(line[n]);
            putchar('\n');
        }
        return 0;
    }
    if (!strcmp(argv[1], "exit") && argc > 2) return atoi(argv[2]);
    if (!strcmp(argv[1], "signal") && argc > 2) { signal(atoi(argv[2]), SIG_DFL); raise(atoi(argv[2])); }
    return 2;
}
