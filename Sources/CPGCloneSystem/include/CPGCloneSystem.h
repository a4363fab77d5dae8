#pragma once

/// Makes glibc's malloc return large buffers to the system when they are freed, and limits its
/// per-thread arenas (see malloc.c in the .c file for why).
void CPGCloneSystem_tune_malloc(void);
