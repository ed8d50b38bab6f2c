/* native/flow_file.c on real files: a table written through one mapping is read back through a second mapping of
 * the same file (what the next l4nat sees), a handed-over file is taken over with its slot map, an incompatible one
 * is started anew (empty, and says why), and the file's owner lock and permissions hold. Plain C, no Node; files in
 * a fresh directory under /tmp. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../flow_file.h"
#include "expect.h"
#include "keys.h"


#define CAP 4096
#define NFLOWS 500
#define BIG_CAP (1 << 16) /* 4 MiB of entries: 1,024 pages */
static const struct l4_flow_timeouts TO = {.def = {60, 600, 60, 10, 300}};

static long minor_faults(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

/* A write (that changes nothing) to each page of the entries. Not instrumented: ASan's shadow pages would fault too. */
__attribute__((no_sanitize("address"))) static void write_each_page(struct l4_flow_table *ft, uint64_t pages) {
  for (uint64_t i = 0; i < pages; i++) atomic_fetch_add_explicit(&ft->entries[i * (4096 / sizeof(struct l4_flow))].ver, 0, memory_order_relaxed);
}

static struct l4_flow_key fkey(uint32_t i) {
  struct l4_flow_key k;
  memset(&k, 0, sizeof(k));
  k.client[0] = 198;
  k.client[1] = 51;
  k.client[2] = (uint8_t)(i >> 8);
  k.client[3] = (uint8_t)i;
  k.vip[0] = 10;
  k.vip[3] = 1;
  k.cport = (uint16_t)(1024 + i);
  k.vport = 80;
  k.proto = 6;
  k.family = 4;
  return k;
}

/* How many of the NFLOWS flows ft finds with the backend they were inserted with. */
static int found(struct l4_flow_table *ft, const struct siphash_key *k) {
  int n = 0;
  for (uint32_t i = 0; i < NFLOWS; i++) {
    struct l4_flow_key fk = fkey(i);
    struct l4_flow_ref ref;
    if (l4_flow_lookup(ft, &fk, l4_flow_hash(k, &fk), &TO, 100, &ref) && ref.backend == i % 13) n++;
  }
  return n;
}

static void fill(struct l4_flow_table *ft, const struct siphash_key *k) {
  for (uint32_t i = 0; i < NFLOWS; i++) {
    struct l4_flow_key fk = fkey(i);
    struct l4_flow_ref ref;
    l4_flow_insert(ft, &fk, l4_flow_hash(k, &fk), i % 13, 0, FL_SYN | FL_REPLY | FL_EST, &TO, 100, false, &ref);
  }
}

int main(void) {
  char dir[] = "/tmp/l4nat-flowfile-XXXXXX";
  if (!mkdtemp(dir)) return perror("mkdtemp"), 2;
  char path[128];
  snprintf(path, sizeof(path), "%s/l4nat0.flows", dir);
  struct siphash_key k = key_of(0x5f);
  const char *failed = "";
  struct l4_flow_file f;
  struct l4_flow_table ft;

  /* 1. New file: not taken over; written through this mapping, read through a second one. */
  int r = l4_flow_file_open(&f, path, CAP, &k, 0, 0, &ft, &failed);
  EXPECT(r == 0, "open new: %d (%s)", r, failed);
  EXPECT(!f.adopted && !f.existed && f.why == L4_SEG_TRUNCATED, "a new file is not taken over (adopted %d existed %d why %d)", f.adopted, f.existed, f.why);
  struct stat st;
  EXPECT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && (uint64_t)st.st_size == f.bytes, "0600, full size (mode %o size %ld)", st.st_mode & 0777, (long)st.st_size);
  fill(&ft, &k);
  EXPECT(found(&ft, &k) == NFLOWS, "written");
  int fd2 = open(path, O_RDWR);
  uint8_t *second = mmap(NULL, f.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
  EXPECT(second != MAP_FAILED, "second mapping");
  struct l4_flow_segment_hdr *h2 = (struct l4_flow_segment_hdr *)(void *)second;
  struct l4_flow_table ft2;
  l4_flow_table_init_at(&ft2, (struct l4_flow *)(void *)(second + h2->entries_off), (_Atomic uint8_t *)(void *)(second + h2->locks_off), h2->nbuckets);
  EXPECT(found(&ft2, &k) == NFLOWS, "every flow read back through the second mapping: %d", found(&ft2, &k));
  munmap(second, f.bytes);
  close(fd2);

  /* 2. The lock: a second l4nat on the same file is refused while the first holds it. */
  struct l4_flow_file g;
  struct l4_flow_table gt;
  r = l4_flow_file_open(&g, path, CAP, &k, 30, 0, &gt, &failed);
  EXPECT(r == -EWOULDBLOCK && strstr(failed, "flock"), "a held file is refused: %d (%s)", r, failed);

  /* 3. Handover: slot map written, closed clean, taken over with its flows and slot map. */
  EXPECT(l4_flow_segment_put_slots(f.hdr, f.base, (const uint8_t *)"{\"v\":1}", 7) == 0, "slot map written");
  l4_flow_file_close(&f, 1);
  r = l4_flow_file_open(&f, path, CAP, &k, 0, 0, &ft, &failed);
  EXPECT(r == 0 && f.adopted && f.existed && f.why == L4_SEG_OK && f.repaired == 0, "taken over (r %d adopted %d why %d repaired %lu)", r, f.adopted, f.why, (unsigned long)f.repaired);
  EXPECT(found(&ft, &k) == NFLOWS, "every flow kept its backend: %d", found(&ft, &k));
  uint32_t len;
  const uint8_t *m = l4_flow_segment_slots(f.hdr, f.base, &len);
  EXPECT(m && len == 7 && memcmp(m, "{\"v\":1}", 7) == 0, "slot map read back");

  /* 3b. A live handover: the successor joins the file while this one still forwards through it (shared lock),
   * touching nothing (a bucket lock this one holds stays held); the first to leave does not mark it clean. */
  atomic_store(&ft.locks[1], 1);
  r = l4_flow_file_open(&g, path, CAP, &k, 0, 1, &gt, &failed);
  EXPECT(r == 0 && g.adopted && g.repaired == 0, "joined (r %d adopted %d)", r, g.adopted);
  EXPECT(found(&gt, &k) == NFLOWS, "the successor sees every flow");
  EXPECT(atomic_load(&gt.locks[1]) == 1, "a lock the running one holds is left alone");
  atomic_store(&ft.locks[1], 0);
  struct l4_flow_key nk = fkey(NFLOWS + 1);
  struct l4_flow_ref nref;
  l4_flow_insert(&gt, &nk, l4_flow_hash(&k, &nk), 7, 0, 0, &TO, 100, false, &nref);
  EXPECT(l4_flow_lookup(&ft, &nk, l4_flow_hash(&k, &nk), &TO, 100, &nref) && nref.backend == 7, "the running one sees the successor's new flow");
  l4_flow_file_close(&f, 1);
  EXPECT(atomic_load(&g.hdr->clean) == 0, "the one leaving first does not mark it clean");
  struct l4_flow_file h2f;
  struct l4_flow_table h2t;
  r = l4_flow_file_open(&h2f, path, CAP, &k, 0, 0, &h2t, &failed);
  EXPECT(r == -EWOULDBLOCK, "no second l4nat alone on it while the successor runs: %d", r);
  l4_flow_file_close(&g, 1);
  r = l4_flow_file_open(&f, path, CAP, &k, 0, 0, &ft, &failed);
  EXPECT(r == 0 && f.adopted && f.repaired == 0, "left clean by the last one: taken over without a repair walk");
  /* A live handover to a build that cannot take the file over: the running one keeps its (unlinked) file. */
  r = l4_flow_file_open(&g, path, CAP * 2, &k, 0, 1, &gt, &failed);
  EXPECT(r == 0 && !g.adopted && g.why == L4_SEG_CAPACITY && g.existed, "incompatible successor starts anew: r %d why %d", r, g.why);
  EXPECT(found(&gt, &k) == 0 && found(&ft, &k) == NFLOWS, "empty new file; the running one keeps its flows");
  EXPECT(stat(path, &st) == 0 && (uint64_t)st.st_size == g.bytes, "the name is the new file");
  l4_flow_file_close(&g, 1);
  l4_flow_file_close(&f, 1);
  r = l4_flow_file_open(&f, path, CAP * 2, &k, 0, 0, &ft, &failed);
  EXPECT(r == 0 && !f.adopted && f.why == L4_SEG_NO_SLOTS, "the new file never got a slot map: why %d", f.why);
  fill(&ft, &k);
  l4_flow_segment_put_slots(f.hdr, f.base, (const uint8_t *)"x", 1);
  l4_flow_file_close(&f, 1);
  r = l4_flow_file_open(&f, path, CAP, &k, 0, 0, &ft, &failed);
  EXPECT(r == 0 && !f.adopted, "back to CAP: anew");
  fill(&ft, &k);
  l4_flow_segment_put_slots(f.hdr, f.base, (const uint8_t *)"x", 1);

  /* 4. A crash (not closed clean) with a bucket lock held: taken over, the lock released. */
  atomic_store(&ft.locks[0], 1);
  l4_flow_file_close(&f, 0);
  r = l4_flow_file_open(&f, path, CAP, &k, 0, 0, &ft, &failed);
  EXPECT(r == 0 && f.adopted && atomic_load(&ft.locks[0]) == 0, "after a crash: taken over, lock released");
  EXPECT(found(&ft, &k) == NFLOWS, "every flow kept through the crash");
  l4_flow_file_close(&f, 1);

  /* 5. Incompatible files start empty, say why, and are replaced by a valid one. */
  struct siphash_key other = key_of(0x77);
  r = l4_flow_file_open(&f, path, CAP, &other, 0, 0, &ft, &failed);
  EXPECT(r == 0 && !f.adopted && f.existed && f.why == L4_SEG_KEY, "another key: why %d", f.why);
  EXPECT(found(&ft, &k) == 0 && found(&ft, &other) == 0, "and empty");
  fill(&ft, &k);
  l4_flow_segment_put_slots(f.hdr, f.base, (const uint8_t *)"x", 1);
  l4_flow_file_close(&f, 1);
  r = l4_flow_file_open(&f, path, CAP * 2, &k, 0, 0, &ft, &failed);
  EXPECT(r == 0 && !f.adopted && f.why == L4_SEG_CAPACITY && ft.capacity == CAP * 2, "another capacity: why %d cap %lu", f.why, (unsigned long)ft.capacity);
  EXPECT(stat(path, &st) == 0 && (uint64_t)st.st_size == f.bytes, "resized to the new layout");
  EXPECT(found(&ft, &k) == 0, "and empty");
  fill(&ft, &k);
  l4_flow_segment_put_slots(f.hdr, f.base, (const uint8_t *)"x", 1);
  f.hdr->layout ^= 0x100; /* another build's entry layout */
  f.hdr->check = l4_flow_segment_hdr_check(f.hdr);
  l4_flow_file_close(&f, 1);
  r = l4_flow_file_open(&f, path, CAP * 2, &k, 0, 0, &ft, &failed);
  EXPECT(r == 0 && !f.adopted && f.why == L4_SEG_LAYOUT, "another layout: why %d", f.why);
  EXPECT(found(&ft, &k) == 0, "and empty");
  EXPECT(l4_flow_segment_check(f.hdr, f.bytes, CAP * 2, l4_flow_segment_key_id(&k)) == L4_SEG_NO_SLOTS, "rewritten with this build's header");
  l4_flow_file_close(&f, 1);
  int fd = open(path, O_WRONLY | O_TRUNC);
  EXPECT(write(fd, "garbage", 7) == 7, "write");
  close(fd);
  r = l4_flow_file_open(&f, path, CAP, &k, 0, 0, &ft, &failed);
  EXPECT(r == 0 && !f.adopted && f.why == L4_SEG_TRUNCATED, "a 7-byte file: why %d", f.why);
  l4_flow_file_close(&f, 1);

  /* 5. Every page is mapped writable at open: a first write to a bucket (a new flow) takes no page fault on the
   * packet path. MAP_POPULATE alone maps a shared file's pages read-only, which faulted once per page. */
  r = l4_flow_file_open(&f, path, BIG_CAP, &k, 0, 0, &ft, &failed);
  EXPECT(r == 0, "open big: %d (%s)", r, failed);
  long before = minor_faults();
  uint64_t pages = ft.capacity * sizeof(struct l4_flow) / 4096;
  write_each_page(&ft, pages);
  long faults = minor_faults() - before;
  EXPECT(faults < (long)pages / 16, "a first write to each of the table's %lu pages took %ld page faults", (unsigned long)pages, faults);
  l4_flow_file_close(&f, 1);

  /* 6. Someone else's or a readable file: refused (it holds clients' addresses). */
  chmod(path, 0644);
  r = l4_flow_file_open(&f, path, CAP, &k, 0, 0, &ft, &failed);
  EXPECT(r == -EPERM && f.fd == -1, "mode 0644 refused: %d", r);
  unlink(path);
  rmdir(dir);
  printf("%s flow_file_test (%d failures)\n", failures ? "FAIL" : "ok  ", failures);
  return failures ? 1 : 0;
}
