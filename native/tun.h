/* TUN device: open (or re-attach to) a multi-queue TUN with virtio_net_hdr offloads. Syscalls only. */
#ifndef L4NAT_TUN_H
#define L4NAT_TUN_H

#include <stdint.h>

/* The offloads l4nat asks for (include/uapi/linux/if_tun.h). USO is tried first and dropped on kernels
 * that do not know it (before 6.2). */
#define L4_TUN_F_CSUM 0x01
#define L4_TUN_F_TSO4 0x02
#define L4_TUN_F_TSO6 0x04
#define L4_TUN_F_TSO_ECN 0x08
#define L4_TUN_F_USO4 0x20
#define L4_TUN_F_USO6 0x40

/* Opens `nqueues` queues of TUN device `name` (created if absent) into fds[]. Returns 0, or -errno with
 * *failed_call naming the syscall. *offloads receives the offload flags the kernel accepted. The device's
 * real name is written back into name (IFNAMSIZ bytes). */
int l4_tun_open(char *name, int nqueues, int *fds, unsigned *offloads, const char **failed_call);

/* Marks the device persistent (it outlives the process: a restarted l4nat re-attaches) or not. */
int l4_tun_set_persist(int fd, int persist);

/* Attaches or detaches one queue (TUNSETQUEUE): a detached queue gets no packets (what it held is dropped) and
 * stays open; a live handover's successor keeps its queues detached until its workers run. 0 or -errno. */
int l4_tun_set_queue(int fd, int attach);

#endif
