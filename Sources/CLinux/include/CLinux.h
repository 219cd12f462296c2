#ifndef SYNTHD_CLINUX_H
#define SYNTHD_CLINUX_H

/// Linux calls that glibc declares only under _GNU_SOURCE, which Swift's import of the C
/// library does not define.

/// syncfs(2) on the file system holding `path` (a file or folder): flushes that file system's
/// dirty data only, where sync(2) flushes every mounted one. 0 on success, else -1 with errno.
int synthd_syncfs(const char *path);

/// syncfs(2) on the file system of an open descriptor. Its result reports write-back errors
/// (EIO, ENOSPC) that happened on that file system since the descriptor was opened, so open
/// it before the writes whose fate matters.
int synthd_syncfs_fd(int fd);

/// Makes stdout line-buffered, also into a pipe or a file (where the C library buffers whole
/// blocks): Swift 6 cannot name C's global `stdout` outside the main actor.
void synthd_line_buffer_stdout(void);

/// statfs(2)'s `f_type` of the file system holding `path` (NFS_SUPER_MAGIC and the like, in
/// linux/magic.h), or -1 with errno: Swift's import of the C library leaves out sys/vfs.h.
long long synthd_filesystem_type(const char *path);

/// renameat2(2) with RENAME_NOREPLACE: moves `from` to `to` unless something is at `to`
/// (then -1 with EEXIST), in one step (a check and a rename would race another process).
/// -1 with EINVAL where the file system does not support it.
int synthd_rename_noreplace(const char *from, const char *to);

/// malloc_trim(0): gives the whole free pages of every malloc arena back to the system, which
/// glibc otherwise keeps for reuse. 1 if some memory was released.
int synthd_release_free_memory(void);

#endif
