/* Queue steering for a multi-queue TUN (TUNSETSTEERINGEBPF): both directions of a flow on one queue.
 *
 * Why: without a program the TUN picks the queue a packet is read from by a hash of the packet and a small
 * table the kernel learns from the queues packets are written on; a flow can move between queues mid-way, and
 * two workers then write its packets in another order than they came (test/reliability-order.test.ts saw
 * 8 of 2,076 segments overtaken). The program hashes the flow's client side only — source address and port
 * of a packet to a VIP, destination address and port of anything else (a backend's reply) — so the forward
 * and the reply packets of a flow always meet on the same queue, and one worker handles the flow in order.
 * The VIP addresses are compiled into the program as constants; it is rebuilt when the VIP set changes. */
#ifndef L4NAT_STEERING_H
#define L4NAT_STEERING_H

#include <stdint.h>

#define L4_STEERING_MAX_VIPS 1024 /* per family: keeps the program far below the verifier's limits */

/* Builds the program for these VIPs (vips4: n4 x 4 bytes, vips6: n6 x 16 bytes, network order) and this process's
 * nqueues queues (it returns queue numbers nqueues..2*nqueues-1, see steering.c), loads it and attaches it to the
 * TUN queue fd (the program is per device). Returns 0 or -errno with *failed_call set;
 * log (loglen bytes) always ends up a string: the verifier's message if the kernel refused the program, else "". */
int l4_steering_attach(int tun_fd, uint32_t nqueues, const uint8_t *vips4, uint32_t n4, const uint8_t *vips6,
                       uint32_t n6, const char **failed_call, char *log, uint32_t loglen);
/* Removes the program (back to the kernel's own choice). */
int l4_steering_detach(int tun_fd);

#endif
