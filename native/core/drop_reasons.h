/* Why a packet was dropped. One counter per reason per queue; names are exported to TypeScript, keep the
 * order of L4_DROP_REASON_NAMES in step with the enum. */
#ifndef L4NAT_DROP_REASONS_H
#define L4NAT_DROP_REASONS_H

#define L4_DROP_REASONS(X)                                                                               \
  X(NONE, "none")                                                                                         \
  X(BAD_VNET_HDR, "bad_vnet_hdr")           /* virtio_net_hdr inconsistent with the packet */             \
  X(TRUNCATED, "truncated")                 /* shorter than its headers say */                            \
  X(BAD_IP_HEADER, "bad_ip_header")         /* version, IHL, total length, payload length */              \
  X(BAD_IP_CSUM, "bad_ip_csum")             /* IPv4 header checksum wrong */                              \
  X(BAD_L4_HEADER, "bad_l4_header")         /* TCP data offset, UDP length */                             \
  X(FRAGMENT, "fragment")                   /* IPv4 fragment or IPv6 fragment header (docs/dataplane.md) */ \
  X(IPV6_EXT, "ipv6_ext_header")            /* too many, truncated, or a routing header in use */         \
  X(UNSUPPORTED_PROTO, "unsupported_proto") /* not TCP, UDP, ICMP, ICMPv6 */                              \
  X(UNSUPPORTED_GSO, "unsupported_gso")     /* UFO, or GSO type not matching the packet */                \
  X(NOT_SERVICE, "not_service")             /* neither to a service nor from a backend */                 \
  X(VIP_PORT_UNKNOWN, "vip_port_unknown")   /* to a VIP on a port/proto with no service */                \
  X(NO_BACKEND, "no_backend")               /* the service has no backend in its ring */                  \
  X(ICMP_NOT_OURS, "icmp_not_ours")         /* ICMP error quoting a flow that is not ours */              \
  X(ICMP_UNHANDLED, "icmp_unhandled")       /* ICMP type we do not forward (or echo off) */               \
  X(TX_ERROR, "tx_error")                   /* write to the TUN failed */                                 \
  X(ACL_DENIED, "acl_denied")               /* source not allowed by the service's CIDR lists */          \
  X(RATE_LIMITED, "rate_limited")           /* new flow over the client's per-source rate */              \
  X(PROBE_ANSWER, "probe_answer")           /* a backend's RST to a data-plane probe: counted, consumed */ \
  X(SECOND_CHANCE, "second_chance")         /* a backend reset a flow it never had: re-pinned, see dataplane.c */ \
  X(PROBE_UNMATCHED, "probe_unmatched")     /* to the probe address, but no answer to an outstanding probe (forged, late) */ \
  X(BACKENDS_FULL, "backends_full")         /* a new flow no backend may take (max_flows), when_full: drop (admission.h) */

#define L4_DROP_ENUM(name, str) L4_DROP_##name,
enum l4_drop_reason { L4_DROP_REASONS(L4_DROP_ENUM) L4_DROP_MAX };
#undef L4_DROP_ENUM

extern const char *const L4_DROP_REASON_NAMES[L4_DROP_MAX];

#endif
