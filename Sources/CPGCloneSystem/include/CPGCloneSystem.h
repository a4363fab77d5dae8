#pragma once

/// Makes glibc's malloc return large buffers to the system when they are freed, and limits its
/// per-thread arenas (see malloc.c in the .c file for why).
void CPGCloneSystem_tune_malloc(void);

/// pipe2(fds, O_CLOEXEC): both ends close-on-exec from the start, so that no child started by
/// another thread meanwhile inherits them. Returns 0, or -1 with errno set.
int CPGCloneSystem_pipe_cloexec(int fds[2]);

/// memfd_create(name, MFD_CLOEXEC): an anonymous file in memory, for what a child reads by path
/// (/proc/PID/fd/N) and pgclone must not write to disk. Returns the descriptor, or -1 with errno set.
int CPGCloneSystem_memfd(const char *name);
