#define _GNU_SOURCE
#include "teleport_shims.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>

int teleport_open_pty(char *name, size_t size) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return -1;
    if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, size) != 0) {
        int saved = errno;
        close(master);
        errno = saved;
        return -1;
    }
    return master;
}

int teleport_set_window_size(int fd, unsigned short rows, unsigned short columns) {
    struct winsize size;
    memset(&size, 0, sizeof(size));
    size.ws_row = rows;
    size.ws_col = columns;
    return ioctl(fd, TIOCSWINSZ, &size);
}

int teleport_get_window_size(int fd, unsigned short *rows, unsigned short *columns) {
    struct winsize size;
    if (ioctl(fd, TIOCGWINSZ, &size) != 0) return -1;
    *rows = size.ws_row;
    *columns = size.ws_col;
    return 0;
}

int teleport_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

/// Reports `step`'s errno through the pipe and exits; only async-signal-safe calls.
static void spawn_fail(int pipe_fd, int step) {
    int report[2] = {step, errno};
    ssize_t ignored = write(pipe_fd, report, sizeof(report));
    (void)ignored;
    _exit(127);
}

pid_t teleport_spawn_session(const char *path, char *const argv[], char *const envp[],
                             const struct teleport_session_spawn *spec) {
    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(status_pipe[0]);
        close(status_pipe[1]);
        errno = saved;
        return -1;
    }
    if (pid == 0) {
        int report = status_pipe[1];
        close(status_pipe[0]);
        sigset_t empty;
        sigemptyset(&empty);
        sigprocmask(SIG_SETMASK, &empty, NULL);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, NULL);
        if (setsid() < 0) spawn_fail(report, 1);
        // Move the three descriptors out of the way of 0-2 first, so dup2 cannot clobber one with another.
        int in = fcntl(spec->stdin_fd, F_DUPFD_CLOEXEC, 3);
        int out = fcntl(spec->stdout_fd, F_DUPFD_CLOEXEC, 3);
        int err = fcntl(spec->stderr_fd, F_DUPFD_CLOEXEC, 3);
        if (in < 0 || out < 0 || err < 0) spawn_fail(report, 2);
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) spawn_fail(report, 2);
        if (spec->controlling_tty && ioctl(0, TIOCSCTTY, 0) != 0) spawn_fail(report, 3);
        if (spec->change_user) {
            if (setgroups((size_t)spec->group_count, spec->groups) != 0) spawn_fail(report, 4);
            if (setgid(spec->gid) != 0) spawn_fail(report, 5);
            if (setuid(spec->uid) != 0) spawn_fail(report, 6);
            // Dropping privileges must be irreversible.
            if (spec->uid != 0 && setuid(0) == 0) spawn_fail(report, 6);
        }
        if (spec->directory == NULL || chdir(spec->directory) != 0) {
            if (chdir("/") != 0) spawn_fail(report, 7);
        }
        // Close every inherited descriptor except the report pipe (close-on-exec: a successful
        // exec closes it, which is how the parent learns of success).
        if (report > 3) close_range(3, (unsigned int)report - 1, 0);
        close_range((unsigned int)report + 1, ~0U, 0);
        execve(path, argv, envp);
        spawn_fail(report, 8);
    }
    close(status_pipe[1]);
    int report[2] = {0, 0};
    ssize_t got;
    do {
        got = read(status_pipe[0], report, sizeof(report));
    } while (got < 0 && errno == EINTR);
    close(status_pipe[0]);
    if (got == (ssize_t)sizeof(report)) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        errno = report[1];
        return -1;
    }
    return pid;
}

int teleport_signal_session(pid_t pid, int signal) {
    if (kill(-pid, signal) == 0) return 0;
    return kill(pid, signal);
}

int teleport_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}


#include <zlib.h>
#include <stdlib.h>

int teleport_gzip(const unsigned char *input, size_t length, unsigned char **output, size_t *output_length) {
    z_stream stream = {0};
    if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    uLong bound = deflateBound(&stream, (uLong)length) + 32;
    unsigned char *buffer = malloc(bound);
    if (buffer == NULL) { deflateEnd(&stream); return -1; }
    stream.next_in = (Bytef *)input;
    stream.avail_in = (uInt)length;
    stream.next_out = buffer;
    stream.avail_out = (uInt)bound;
    int result = deflate(&stream, Z_FINISH);
    if (result != Z_STREAM_END) { deflateEnd(&stream); free(buffer); return -1; }
    *output = buffer;
    *output_length = stream.total_out;
    deflateEnd(&stream);
    return 0;
}

int teleport_gunzip(const unsigned char *input, size_t length, size_t limit, unsigned char **output, size_t *output_length) {
    z_stream stream = {0};
    if (inflateInit2(&stream, 15 + 16) != Z_OK) return -1;
    size_t capacity = length * 4 + 1024;
    if (capacity > limit + 1) capacity = limit + 1;
    unsigned char *buffer = malloc(capacity);
    if (buffer == NULL) { inflateEnd(&stream); return -1; }
    stream.next_in = (Bytef *)input;
    stream.avail_in = (uInt)length;
    size_t produced = 0;
    for (;;) {
        if (produced == capacity) {
            if (capacity > limit) { inflateEnd(&stream); free(buffer); return -2; }
            size_t grown = capacity * 2;
            if (grown > limit + 1) grown = limit + 1;
            unsigned char *bigger = realloc(buffer, grown);
            if (bigger == NULL) { inflateEnd(&stream); free(buffer); return -1; }
            buffer = bigger;
            capacity = grown;
        }
        stream.next_out = buffer + produced;
        stream.avail_out = (uInt)(capacity - produced);
        int result = inflate(&stream, Z_NO_FLUSH);
        produced = capacity - stream.avail_out;
        if (result == Z_STREAM_END) {
            if (stream.avail_in != 0 || produced > limit) { inflateEnd(&stream); free(buffer); return produced > limit ? -2 : -1; }
            break;
        }
        if (result != Z_OK) { inflateEnd(&stream); free(buffer); return -1; }
        if (stream.avail_in == 0 && stream.avail_out != 0) { inflateEnd(&stream); free(buffer); return -1; }
    }
    *output = buffer;
    *output_length = produced;
    inflateEnd(&stream);
    return 0;
}

#include <malloc.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>

int teleport_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int teleport_eventfd(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

int teleport_malloc_trim(void) {
    return malloc_trim(0);
}
