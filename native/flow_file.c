/* The flow table file's system calls; the decisions are core/flow_segment.c's. */
#define _GNU_SOURCE /* fallocate, MADV_POPULATE_WRITE */
#include "flow_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fail(struct l4_flow_file *f, const char **failed_call, const char *call) {
  int e = errno;
  *failed_call = call;
  if (f->base) munmap(f->base, (size_t)f->bytes);
  if (f->fd >= 0) close(f->fd);
  f->base = NULL;
  f->fd = -1;
  return -e;
}

static int lock_file(int fd, int how, uint32_t wait_ms) {
  for (uint32_t waited = 0;; waited += 10) {
    if (flock(fd, how | LOCK_NB) == 0) return 0;
    if (errno != EWOULDBLOCK || waited >= wait_ms) return -1;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

int l4_flow_file_open(struct l4_flow_file *f, const char *path, uint64_t capacity, const struct siphash_key *key,
                      uint32_t lock_wait_ms, int shared, struct l4_flow_table *ft, const char **failed_call) {
  memset(f, 0, sizeof(*f));
  f->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (f->fd < 0) return fail(f, failed_call, "open flow table file");
  struct stat st;
  if (fstat(f->fd, &st) < 0) return fail(f, failed_call, "fstat flow table file");
  /* It holds clients' addresses: only ever this user's own, private file. */
  if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
    errno = EPERM;
    return fail(f, failed_call, "flow table file (must be a regular file of this user with mode 0600)");
  }
  /* Another l4nat on it (or the previous one still exiting): a flock ends with its holder, crash or not. */
  if (lock_file(f->fd, shared ? LOCK_SH : LOCK_EX, lock_wait_ms) < 0) return fail(f, failed_call, "flock flow table file");
  f->existed = st.st_size > 0;
  uint64_t key_id = l4_flow_segment_key_id(key);
  struct l4_flow_segment_hdr want;
  l4_flow_segment_format(&want, capacity, key_id);
  f->bytes = want.total_bytes;
  f->why = L4_SEG_TRUNCATED;
  if ((uint64_t)st.st_size >= sizeof(struct l4_flow_segment_hdr)) {
    struct l4_flow_segment_hdr h;
    if (pread(f->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) return fail(f, failed_call, "read flow table file");
    f->why = l4_flow_segment_check(&h, (uint64_t)st.st_size, capacity, key_id);
  }
  if (f->why != L4_SEG_OK && shared) {
    /* The running l4nat maps this file: leave it its inode, and start a new file under the name. */
    enum l4_seg_verdict why = f->why;
    int existed = f->existed;
    if (unlink(path) < 0 && errno != ENOENT) return fail(f, failed_call, "unlink flow table file");
    close(f->fd);
    int r = l4_flow_file_open(f, path, capacity, key, lock_wait_ms, 0, ft, failed_call);
    f->why = why;
    f->existed = existed;
    return r;
  }
  if (f->why != L4_SEG_OK) {
    /* Start anew: cut it to nothing first, so no old entry survives in the new table. */
    if (ftruncate(f->fd, 0) < 0 || ftruncate(f->fd, (off_t)f->bytes) < 0) return fail(f, failed_call, "ftruncate flow table file");
    /* Reserve the blocks now (tmpfs: the memory), so a full file system fails here, not as SIGBUS later. */
    int r = fallocate(f->fd, 0, 0, (off_t)f->bytes);
    if (r < 0 && errno != EOPNOTSUPP) return fail(f, failed_call, "fallocate flow table file");
  }
  void *m = mmap(NULL, (size_t)f->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
  if (m == MAP_FAILED) return fail(f, failed_call, "mmap flow table file");
  f->base = m;
  /* Map every page writable now. MAP_POPULATE would not: on a shared mapping it maps pages read-only, so the
   * first write to each page (a new flow in a bucket never written) takes a fault on the packet path, tens of
   * thousands of them over the first new flows (it cost the connect rate ~14 % in the benchmark). Unlike a
   * write of our own, this changes no byte, so it is safe on a table another l4nat is forwarding through.
   * Kernels before 5.14 lack it (EINVAL): there the pages fault in as flows arrive, as before. */
  if (madvise(m, (size_t)f->bytes, MADV_POPULATE_WRITE) < 0 && errno != EINVAL) return fail(f, failed_call, "madvise(MADV_POPULATE_WRITE) flow table file");
  f->hdr = m;
  f->adopted = f->why == L4_SEG_OK;
  if (!f->adopted) {
    memcpy(f->hdr, &want, sizeof(want));
    l4_flow_segment_release(f->hdr); /* all zero: nothing to repair */
  }
  f->repaired = l4_flow_segment_attach(ft, f->hdr, f->base, !shared);
  /* Alone until now; from here on a live handover's successor may join (shared), a second l4nat may not. */
  if (!shared && flock(f->fd, LOCK_SH | LOCK_NB) < 0) return fail(f, failed_call, "flock flow table file (shared)");
  return 0;
}

void l4_flow_file_close(struct l4_flow_file *f, int clean) {
  if (f->fd < 0 || !f->base) return;
  /* Only the last user may say nothing is half-written: a successor still forwarding through it may be mid-write. */
  if (clean && flock(f->fd, LOCK_EX | LOCK_NB) == 0) l4_flow_segment_release(f->hdr);
  munmap(f->base, (size_t)f->bytes);
  close(f->fd); /* ends the flock */
  f->base = NULL;
  f->hdr = NULL;
  f->fd = -1;
}
