#pragma once

/// Makes glibc's malloc return large buffers to the system when they are freed, and limits its
/// per-thread arenas (see malloc.c in the .c file for why).
void CPGCloneSystem_tune_malloc(void);

/// pipe2(fds, O_CLOEXEC): both ends close-on-exec from the start, so that no child started by
/// another thread meanwhile inherits them. Returns 0, or -1 with errno set.
int CPGCloneSystem_pipe_cloexec(int fds[2]);
