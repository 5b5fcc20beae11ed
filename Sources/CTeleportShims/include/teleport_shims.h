#ifndef TELEPORT_SHIMS_H
#define TELEPORT_SHIMS_H

#include <spawn.h>
#include <sys/types.h>

/// Opens a new pseudo-terminal master (O_RDWR | O_NOCTTY), grants and unlocks it, and writes the
/// slave's path into `name` (at most `size` bytes). Returns the master descriptor, or -1 (errno set).
int teleport_open_pty(char *name, size_t size);

/// Sets a terminal's window size (TIOCSWINSZ). Returns 0, or -1 (errno set).
int teleport_set_window_size(int fd, unsigned short rows, unsigned short columns);

/// Reads a terminal's window size (TIOCGWINSZ). Returns 0, or -1 (errno set).
int teleport_get_window_size(int fd, unsigned short *rows, unsigned short *columns);

/// Adds "close every descriptor from `lowest` up" to spawn file actions (glibc's
/// posix_spawn_file_actions_addclosefrom_np), so a child inherits only stdin, stdout and stderr.
int teleport_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);

/// How `teleport_spawn_session` starts a login session's process.
struct teleport_session_spawn {
    /// Descriptors that become the child's 0, 1 and 2 (a pseudo-terminal slave three times, or pipes).
    int stdin_fd, stdout_fd, stderr_fd;
    /// Non-zero: after setsid(), make descriptor 0 (a terminal) the controlling terminal.
    int controlling_tty;
    /// Non-zero: setgroups(groups), setgid(gid), setuid(uid) before exec; each must succeed.
    int change_user;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    int group_count;
    /// The working directory; "/" is used when it cannot be entered.
    const char *directory;
};

/// Starts `path` with `argv`/`envp` in a new session, as described by `spec`: fork, then in the
/// child only async-signal-safe calls (setsid, TIOCSCTTY, dup2, setgroups/setgid/setuid, chdir,
/// default signal dispositions and an empty signal mask, closefrom(3), execve). A failure in the
/// child before exec is reported back through a close-on-exec pipe, so the caller gets -1 and the
/// child's errno, never a half-started session. Returns the child's pid.
pid_t teleport_spawn_session(const char *path, char *const argv[], char *const envp[],
                             const struct teleport_session_spawn *spec);

/// pipe2(fds, O_CLOEXEC), which Glibc's Swift module does not expose.
int teleport_pipe_cloexec(int fds[2]);

/// Sends `signal` to the process group `pid` leads (falling back to the process alone).
int teleport_signal_session(pid_t pid, int signal);

/// gzip (RFC 1952) of `length` bytes at `input` into a malloc'ed buffer (*output, *output_length;
/// the caller frees it). Returns 0, or -1 when zlib fails.
int teleport_gzip(const unsigned char *input, size_t length, unsigned char **output, size_t *output_length);

/// Inflates gzip data into a malloc'ed buffer, refusing more than `limit` bytes of output.
/// Returns 0; -1 for data that is not whole, valid gzip; -2 when the output would exceed `limit`.
int teleport_gunzip(const unsigned char *input, size_t length, size_t limit, unsigned char **output, size_t *output_length);

/// pidfd_open(pid, 0) (Linux 5.3+): a descriptor that polls readable once `pid` has exited.
/// Returns it (close-on-exec), or -1 (errno set; ENOSYS on older kernels).
int teleport_pidfd_open(pid_t pid);

/// A non-blocking, close-on-exec eventfd (to wake a thread blocked in poll). Returns it, or -1.
int teleport_eventfd(void);

/// Returns the heap's free memory to the system (glibc's malloc_trim(0): every arena, not only
/// the top of the main heap). Returns 1 when some memory was released.
int teleport_malloc_trim(void);

#endif
