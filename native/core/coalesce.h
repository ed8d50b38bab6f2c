/* UDP coalescing on the write side: consecutive translated datagrams of one flow, with one payload size, are
 * written to the TUN as ONE UDP GSO super-packet (virtio_net_hdr GSO_UDP_L4), the way wireguard-go's
 * tun/offload_linux.go coalesces before its TUN writes. A TUN write carries its packet through the kernel's
 * whole forwarding path (routing with the policy rules, the neighbour, the veth or NIC) in the writer's
 * context; for small datagrams that path, not l4nat, is the cost, and a super-packet pays it once. The kernel
 * cuts it back into the same datagrams where it must (__udp_gso_segment: at the outgoing device, or at the
 * receiving socket, udp_rcv_segment): only datagrams the segmentation reproduces exactly are merged.
 *
 * Merged, in order, while every rule holds:
 *   - plain datagrams: no GSO; checksum offloaded (NEEDS_CSUM) or verified by the kernel (DATA_VALID), so
 *     replacing it with an offloaded one for the super-packet neither hides a bad checksum nor adds one
 *     (an IPv4 datagram sent without a checksum, field 0, is never merged);
 *   - IPv4 without options and not a fragment, or IPv6 with UDP right after the fixed header;
 *   - the same IP header except lengths (and, IPv4, the header checksum and an identification that counts up
 *     by one, as the segmentation writes it), the same ports;
 *   - the same payload size, except that a shorter datagram may end the run;
 *   - at most L4_CO_MAX_SEGS datagrams and 64 KiB.
 * Plain C, no Node; unit-tested with packet fixtures (native/test/core_test_coalesce.c). */
#ifndef L4NAT_CORE_COALESCE_H
#define L4NAT_CORE_COALESCE_H

#include <stdbool.h>
#include <stdint.h>

#include "packet.h"

#define L4_CO_MAX_SEGS 64 /* UDP_MAX_SEGMENTS of older kernels (include/linux/udp.h) */
#define L4_CO_MAX_IP 65535
#define L4_CO_BUF_SIZE (VNET_HDR_LEN + L4_CO_MAX_IP)

struct l4_coalescer {
  uint8_t *buf;      /* L4_CO_BUF_SIZE bytes: virtio_net_hdr + the first datagram, then the others' payloads */
  uint32_t len;      /* bytes held, virtio_net_hdr included; 0 when empty */
  uint16_t l4_off;   /* UDP header offset from the IP header */
  uint16_t seg;      /* payload bytes per datagram */
  uint16_t segs;     /* datagrams held */
  uint16_t next_id;  /* IPv4: the identification the next datagram must carry */
  bool ended;        /* a shorter datagram ended the run */
};

/* Allocates the buffer; 0 or -ENOMEM. */
int l4_co_init(struct l4_coalescer *c);
void l4_co_destroy(struct l4_coalescer *c);

/* Appends a translated packet (virtio_net_hdr + IP, `len` bytes) to the held run if it continues it. */
bool l4_co_append(struct l4_coalescer *c, const uint8_t *pkt, uint32_t len);

/* Starts a run with the packet if it may be merged with later ones (the coalescer must be empty); false
 * when it cannot be merged at all: the caller writes it as it is. */
bool l4_co_start(struct l4_coalescer *c, const uint8_t *pkt, uint32_t len);

/* Ends the run: returns the bytes to write from c->buf (0 when nothing is held) — one datagram exactly as it
 * came, several as a UDP GSO super-packet — and sets *segs to the number of datagrams in it. The bytes stay
 * valid until the next l4_co_start. */
uint32_t l4_co_finish(struct l4_coalescer *c, uint32_t *segs);

#endif
