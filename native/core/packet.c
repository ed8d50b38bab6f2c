/* Packet parsing; see packet.h. Mirrors the checks the kernel makes in ip_rcv_core / ipv6_rcv and
 * virtio_net_hdr_to_skb (include/linux/virtio_net.h), because a buffer we write back is handed to them. */
#include "packet.h"

#include <string.h>

#include "csum.h"

#define L4_DROP_NAME(name, str) str,
const char *const L4_DROP_REASON_NAMES[L4_DROP_MAX] = {L4_DROP_REASONS(L4_DROP_NAME)};
#undef L4_DROP_NAME

enum ext_result { EXT_OK, EXT_FRAGMENT, EXT_BAD, EXT_TRUNCATED };

/* Walks IPv6 extension headers from the fixed header. On EXT_OK, *off is the L4 offset and *proto the
 * upper-layer protocol. Hop-by-hop must come first (RFC 8200 4.1); a routing header with segments left
 * would mean the destination address is not the final one, so the pseudo-header would be wrong. */
static enum ext_result ipv6_skip_ext(const uint8_t *ip, uint32_t len, uint32_t *off, uint8_t *proto) {
  uint8_t next = ip[IP6_OFF_NEXT];
  uint32_t pos = IP6_HDR_LEN;
  for (int i = 0; i <= IPV6_MAX_EXT_HEADERS; i++) { /* <=: the L4 header comes after the last one */
    switch (next) {
      case 0:  /* hop-by-hop options */
        if (i != 0) return EXT_BAD;
        /* fall through */
      case 43: /* routing */
      case 60: /* destination options */ {
        if (pos + 8 > len) return EXT_TRUNCATED;
        uint32_t hlen = ((uint32_t)ip[pos + 1] + 1) * 8;
        if (pos + hlen > len) return EXT_TRUNCATED;
        if (next == 43 && ip[pos + 3] != 0) return EXT_BAD; /* segments left */
        next = ip[pos];
        pos += hlen;
        break;
      }
      case 44: /* fragment */
        return EXT_FRAGMENT;
      default:
        *off = pos;
        *proto = next;
        return EXT_OK;
    }
  }
  return EXT_BAD;
}

/* Fills the L4 fields; `full` means the whole L4 header must be present (not an ICMP quote). */
static enum l4_drop_reason parse_l4(struct l4_pkt *pkt, bool full) {
  const uint8_t *l4 = pkt->l4;
  uint32_t n = pkt->l4_len;
  pkt->sport = pkt->dport = 0;
  pkt->tcp_flags = 0;
  switch (pkt->proto) {
    case IPPROTO_TCP_:
      if (n < (full ? 20u : 8u)) return L4_DROP_TRUNCATED;
      memcpy(&pkt->sport, l4, 2);
      memcpy(&pkt->dport, l4 + 2, 2);
      if (full) {
        uint32_t doff = (uint32_t)(l4[12] >> 4) * 4;
        if (doff < 20 || doff > n) return L4_DROP_BAD_L4_HEADER;
        pkt->tcp_flags = l4[13];
      }
      return L4_DROP_NONE;
    case IPPROTO_UDP_:
      if (n < 8) return L4_DROP_TRUNCATED;
      memcpy(&pkt->sport, l4, 2);
      memcpy(&pkt->dport, l4 + 2, 2);
      /* RFC 8200 8.1: a zero UDP checksum is invalid over IPv6 (a partial one holds the pseudo-header sum). */
      if (full && pkt->family == 6 && !pkt->csum_partial && load_u16(l4 + 6) == 0) return L4_DROP_BAD_L4_HEADER;
      if (full && pkt->gso_type != VNET_GSO_UDP_L4) {
        /* A GSO super-packet's UDP length is the segment's; otherwise it must fit the IP payload. */
        uint32_t ulen = load_be16(l4 + 4);
        if (ulen < 8 || ulen > n) return L4_DROP_BAD_L4_HEADER;
      }
      return L4_DROP_NONE;
    case IPPROTO_ICMP_:
    case IPPROTO_ICMPV6_:
      if (n < 8) return L4_DROP_TRUNCATED;
      return L4_DROP_NONE;
    default:
      return L4_DROP_UNSUPPORTED_PROTO;
  }
}

/* Parses the IP header at buf[0..len). `quoted`: inside an ICMP error, where the quote may be cut short. */
static enum l4_drop_reason parse_ip(uint8_t *ip, uint32_t len, bool quoted, struct l4_pkt *pkt) {
  if (len < 1) return L4_DROP_TRUNCATED;
  uint8_t version = ip[0] >> 4;
  uint32_t l4_off;
  pkt->l3 = ip;
  if (version == 4) {
    if (len < 20) return L4_DROP_TRUNCATED;
    uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4;
    if (ihl < 20) return L4_DROP_BAD_IP_HEADER;
    if (ihl > len) return L4_DROP_TRUNCATED;
    uint32_t tot = load_be16(ip + IP4_OFF_TOTLEN);
    if (!quoted) {
      if (tot < ihl) return L4_DROP_BAD_IP_HEADER;
      if (tot > len) return L4_DROP_TRUNCATED;
      if (csum_fold(csum_add_buf(0, ip, ihl)) != 0xffff) return L4_DROP_BAD_IP_CSUM;
    } else {
      tot = len; /* the quote holds what it holds */
    }
    if (load_be16(ip + IP4_OFF_FRAG) & 0x3fff) return L4_DROP_FRAGMENT; /* MF or an offset */
    pkt->family = 4;
    pkt->addr_len = 4;
    pkt->proto = ip[IP4_OFF_PROTO];
    pkt->saddr = ip + IP4_OFF_SADDR;
    pkt->daddr = ip + IP4_OFF_DADDR;
    pkt->l3_len = tot;
    l4_off = ihl;
  } else if (version == 6) {
    if (len < IP6_HDR_LEN) return L4_DROP_TRUNCATED;
    uint32_t tot;
    if (!quoted) {
      uint32_t plen = load_be16(ip + IP6_OFF_PLEN);
      if (plen == 0) return L4_DROP_BAD_IP_HEADER; /* jumbograms (RFC 2675) are not supported */
      tot = IP6_HDR_LEN + plen;
      if (tot > len) return L4_DROP_TRUNCATED;
    } else {
      tot = len;
    }
    uint8_t proto;
    switch (ipv6_skip_ext(ip, tot, &l4_off, &proto)) {
      case EXT_OK: break;
      case EXT_FRAGMENT: return L4_DROP_FRAGMENT;
      case EXT_TRUNCATED: return L4_DROP_TRUNCATED;
      default: return L4_DROP_IPV6_EXT;
    }
    pkt->family = 6;
    pkt->addr_len = 16;
    pkt->proto = proto;
    pkt->saddr = ip + IP6_OFF_SADDR;
    pkt->daddr = ip + IP6_OFF_DADDR;
    pkt->l3_len = tot;
  } else {
    return L4_DROP_BAD_IP_HEADER;
  }
  pkt->l4 = ip + l4_off;
  pkt->l4_len = pkt->l3_len - l4_off;
  if (pkt->family == 4 && pkt->proto == IPPROTO_ICMPV6_) return L4_DROP_UNSUPPORTED_PROTO;
  if (pkt->family == 6 && pkt->proto == IPPROTO_ICMP_) return L4_DROP_UNSUPPORTED_PROTO;
  return parse_l4(pkt, !quoted);
}

/* Checks the virtio_net_hdr against the parsed packet, like virtio_net_hdr_to_skb would on write. */
static enum l4_drop_reason check_vnet(const struct l4_pkt *pkt) {
  const uint8_t *vh = pkt->vnet;
  uint8_t flags = vh[VNET_OFF_FLAGS];
  uint8_t gso = vh[VNET_OFF_GSO_TYPE] & (uint8_t)~VNET_GSO_ECN;
  uint32_t l4_off = (uint32_t)(pkt->l4 - pkt->l3);
  if (pkt->csum_partial) {
    uint16_t start, off;
    memcpy(&start, vh + VNET_OFF_CSUM_START, 2);
    memcpy(&off, vh + VNET_OFF_CSUM_OFFSET, 2);
    uint16_t want = pkt->proto == IPPROTO_TCP_ ? TCP_OFF_CSUM : pkt->proto == IPPROTO_UDP_ ? UDP_OFF_CSUM : 0xffff;
    /* We patch the checksum at l4 + want, so the kernel must agree on where it lives. */
    if (start != l4_off || off != want) return L4_DROP_BAD_VNET_HDR;
  }
  if (flags & ~(VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) return L4_DROP_BAD_VNET_HDR;
  switch (gso) {
    case VNET_GSO_NONE:
      return L4_DROP_NONE;
    case VNET_GSO_TCPV4:
      if (pkt->family != 4 || pkt->proto != IPPROTO_TCP_) return L4_DROP_UNSUPPORTED_GSO;
      break;
    case VNET_GSO_TCPV6:
      if (pkt->family != 6 || pkt->proto != IPPROTO_TCP_) return L4_DROP_UNSUPPORTED_GSO;
      break;
    case VNET_GSO_UDP_L4:
      if (pkt->proto != IPPROTO_UDP_) return L4_DROP_UNSUPPORTED_GSO;
      break;
    default:
      return L4_DROP_UNSUPPORTED_GSO;
  }
  if (!pkt->csum_partial) return L4_DROP_BAD_VNET_HDR; /* GSO always comes with a partial checksum */
  uint16_t gso_size;
  memcpy(&gso_size, vh + VNET_OFF_GSO_SIZE, 2);
  if (gso_size == 0) return L4_DROP_BAD_VNET_HDR;
  return L4_DROP_NONE;
}

enum l4_drop_reason l4_parse(uint8_t *buf, uint32_t len, struct l4_pkt *pkt) {
  memset(pkt, 0, sizeof(*pkt));
  if (len < VNET_HDR_LEN) return L4_DROP_BAD_VNET_HDR;
  pkt->vnet = buf;
  pkt->csum_partial = (buf[VNET_OFF_FLAGS] & VNET_F_NEEDS_CSUM) != 0;
  pkt->gso_type = buf[VNET_OFF_GSO_TYPE] & (uint8_t)~VNET_GSO_ECN;
  enum l4_drop_reason r = parse_ip(buf + VNET_HDR_LEN, len - VNET_HDR_LEN, false, pkt);
  if (r != L4_DROP_NONE) return r;
  return check_vnet(pkt);
}

bool l4_parse_quoted(uint8_t *buf, uint32_t len, uint8_t family, struct l4_pkt *pkt) {
  memset(pkt, 0, sizeof(*pkt));
  if (parse_ip(buf, len, true, pkt) != L4_DROP_NONE) return false;
  return pkt->family == family;
}
