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

#endif
