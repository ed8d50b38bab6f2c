/* The fixtures' packet builder; see pkt_builder.h. Written from the RFCs (791, 793, 768, 792, 8200, 4443,
 * 1071) and the Linux virtio_net_hdr / GSO code it names, not from native/core. */
#include "pkt_builder.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- byte helpers ---- */
uint16_t pb_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
void pb_put_be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
uint32_t pb_be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
void pb_put_be32(uint8_t *p, uint32_t v) {
  pb_put_be16(p, (uint16_t)(v >> 16));
  pb_put_be16(p + 2, (uint16_t)v);
}
void pb_put16_native(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static uint16_t get16_native(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

void pb_addr(uint8_t family, const char *text, uint8_t out[16]) {
  memset(out, 0, 16);
  if (inet_pton(family == 4 ? AF_INET : AF_INET6, text, out) != 1) {
    fprintf(stderr, "pkt_builder: bad address %s\n", text);
    abort();
  }
}

/* ---- checksum ---- */
uint32_t pb_sum(uint32_t acc, const uint8_t *p, uint32_t len) {
  uint64_t s = acc;
  uint32_t i = 0;
  for (; i + 1 < len; i += 2) s += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (i < len) s += (uint32_t)p[i] << 8; /* odd byte: padded with a zero byte on the right */
  while (s >> 32) s = (s & 0xffffffffu) + (s >> 32);
  return (uint32_t)s;
}

uint16_t pb_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

uint32_t pb_pseudo(uint8_t family, const uint8_t *src, const uint8_t *dst, uint8_t proto, uint32_t l4_len) {
  uint32_t alen = family == 4 ? 4 : 16;
  uint32_t s = pb_sum(0, src, alen);
  s = pb_sum(s, dst, alen);
  /* IPv4: zero, proto, 16-bit length; IPv6: 32-bit length, 3 zero bytes, next header. Either way the sum is
   * length + proto as 16-bit values (for lengths below 64 KiB; above, the upper half adds in too). */
  uint64_t t = (uint64_t)s + proto + (l4_len & 0xffff) + (l4_len >> 16);
  while (t >> 32) t = (t & 0xffffffffu) + (t >> 32);
  return (uint32_t)t;
}

/* ---- IP ---- */
void pb_ip4(struct pb_ip *ip, const char *src, const char *dst) {
  memset(ip, 0, sizeof(*ip));
  ip->family = 4;
  pb_addr(4, src, ip->src);
  pb_addr(4, dst, ip->dst);
  ip->ttl = 63;
  ip->id = 0x1c46;
  ip->frag = PB_IP4_DF;
}

void pb_ip6(struct pb_ip *ip, const char *src, const char *dst) {
  memset(ip, 0, sizeof(*ip));
  ip->family = 6;
  pb_addr(6, src, ip->src);
  pb_addr(6, dst, ip->dst);
  ip->ttl = 63;
  ip->flow = 0x12345;
}

static struct pb_ext6 *add_ext(struct pb_ip *ip, uint8_t type, uint16_t len) {
  if (ip->next >= PB_MAX_EXT || len < 8 || len % 8 || len > 256) abort();
  struct pb_ext6 *e = &ip->ext[ip->next++];
  memset(e, 0, sizeof(*e));
  e->type = type;
  e->len = len;
  return e;
}

void pb_ip6_add_opts(struct pb_ip *ip, uint8_t type, uint16_t len) {
  struct pb_ext6 *e = add_ext(ip, type, len);
  /* RFC 8200 4.2: fill the option area with one PadN option (type 1, length n - 2). */
  uint16_t area = (uint16_t)(len - 2);
  if (area == 1) {
    e->bytes[2] = 0; /* Pad1 */
  } else {
    e->bytes[2] = 1;
    e->bytes[3] = (uint8_t)(area - 2);
  }
}

void pb_ip6_add_routing(struct pb_ip *ip, uint8_t segments_left, int naddrs) {
  struct pb_ext6 *e = add_ext(ip, 43, (uint16_t)(8 + 16 * naddrs));
  e->bytes[2] = 4; /* routing type 4: segment routing header (RFC 8754) */
  e->bytes[3] = segments_left;
  for (int i = 0; i < naddrs; i++) {
    e->bytes[8 + 16 * i] = 0x20;
    e->bytes[8 + 16 * i + 1] = 0x01;
    e->bytes[8 + 16 * i + 15] = (uint8_t)(i + 1);
  }
}

void pb_ip6_add_frag(struct pb_ip *ip, uint16_t offset8, bool more, uint32_t ident) {
  struct pb_ext6 *e = add_ext(ip, 44, 8);
  pb_put_be16(e->bytes + 2, (uint16_t)(offset8 << 3 | (more ? 1 : 0)));
  pb_put_be32(e->bytes + 4, ident);
}

/* ---- L4 ---- */
void pb_tcp(struct pb_l4 *l4, uint16_t sport, uint16_t dport, uint8_t flags) {
  memset(l4, 0, sizeof(*l4));
  l4->proto = 6;
  l4->sport = sport;
  l4->dport = dport;
  l4->flags = flags;
  l4->seq = 0x11223344;
  l4->ack = (flags & PB_TCP_ACK) ? 0x55667788 : 0;
  l4->win = 64240;
}

void pb_tcp_std_opts(struct pb_l4 *l4) {
  static const uint8_t opts[20] = {
      2, 4, 0x05, 0xb4,                               /* MSS 1460 */
      4, 2,                                           /* SACK permitted */
      8, 10, 0x00, 0x0a, 0xbc, 0xde, 0, 0, 0, 0,      /* timestamps */
      1, 3, 3, 7,                                     /* NOP, window scale 7 */
  };
  memcpy(l4->opts, opts, sizeof(opts));
  l4->opts_len = sizeof(opts);
}

void pb_udp(struct pb_l4 *l4, uint16_t sport, uint16_t dport) {
  memset(l4, 0, sizeof(*l4));
  l4->proto = 17;
  l4->sport = sport;
  l4->dport = dport;
}

void pb_icmp(struct pb_l4 *l4, uint8_t family, uint8_t type, uint8_t code, uint32_t rest) {
  memset(l4, 0, sizeof(*l4));
  l4->proto = family == 4 ? 1 : 58;
  l4->icmp_type = type;
  l4->icmp_code = code;
  l4->icmp_rest = rest;
}

static uint32_t l4_header_len(const struct pb_l4 *l4) {
  switch (l4->proto) {
    case 6: return 20u + l4->opts_len;
    case 17: return 8;
    case 1:
    case 58: return 8;
    default: return 0;
  }
}

static int csum_off_for(uint8_t proto) {
  switch (proto) {
    case 6: return 16;
    case 17: return 6;
    case 1:
    case 58: return 2;
    default: return -1;
  }
}

uint32_t pb_build_ip(uint8_t *out, uint32_t cap, const struct pb_ip *ip, const struct pb_l4 *l4) {
  uint32_t ext_len = 0;
  if (ip->family == 6)
    for (int i = 0; i < ip->next; i++) ext_len += ip->ext[i].len;
  uint32_t l3_hdr = ip->family == 4 ? 20u + ip->opts_len : 40u + ext_len;
  uint32_t l4_hdr = l4_header_len(l4);
  uint32_t l4_len = l4_hdr + l4->payload_len;
  uint32_t total = l3_hdr + l4_len;
  if (total > cap) return 0;
  memset(out, 0, total);

  /* L4 first, with a zero checksum */
  uint8_t *t = out + l3_hdr;
  switch (l4->proto) {
    case 6:
      pb_put_be16(t, l4->sport);
      pb_put_be16(t + 2, l4->dport);
      pb_put_be32(t + 4, l4->seq);
      pb_put_be32(t + 8, l4->ack);
      t[12] = (uint8_t)((l4->doff_words ? l4->doff_words : l4_hdr / 4) << 4);
      t[13] = l4->flags;
      pb_put_be16(t + 14, l4->win);
      pb_put_be16(t + 18, l4->urg);
      memcpy(t + 20, l4->opts, l4->opts_len);
      break;
    case 17:
      pb_put_be16(t, l4->sport);
      pb_put_be16(t + 2, l4->dport);
      pb_put_be16(t + 4, l4->udp_len_set ? l4->udp_len : (uint16_t)l4_len);
      break;
    case 1:
    case 58:
      t[0] = l4->icmp_type;
      t[1] = l4->icmp_code;
      pb_put_be32(t + 4, l4->icmp_rest);
      break;
    default:
      break;
  }
  if (l4->payload_len) memcpy(t + l4_hdr, l4->payload, l4->payload_len);

  /* L3 */
  if (ip->family == 4) {
    out[0] = (uint8_t)(0x40 | (l3_hdr / 4));
    out[1] = ip->tos;
    pb_put_be16(out + 2, (uint16_t)total);
    pb_put_be16(out + 4, ip->id);
    pb_put_be16(out + 6, ip->frag);
    out[8] = ip->ttl;
    out[9] = l4->proto;
    memcpy(out + 12, ip->src, 4);
    memcpy(out + 16, ip->dst, 4);
    memcpy(out + 20, ip->opts, ip->opts_len);
    pb_put_be16(out + 10, (uint16_t)~pb_fold(pb_sum(0, out, l3_hdr)));
  } else {
    pb_put_be32(out, 0x60000000u | (uint32_t)ip->tos << 20 | (ip->flow & 0xfffff));
    pb_put_be16(out + 4, (uint16_t)(total - 40));
    out[6] = ip->next ? ip->ext[0].type : l4->proto;
    out[7] = ip->ttl;
    memcpy(out + 8, ip->src, 16);
    memcpy(out + 24, ip->dst, 16);
    uint32_t pos = 40;
    for (int i = 0; i < ip->next; i++) {
      const struct pb_ext6 *e = &ip->ext[i];
      memcpy(out + pos, e->bytes, e->len);
      out[pos] = i + 1 < ip->next ? ip->ext[i + 1].type : l4->proto;
      out[pos + 1] = e->type == 44 ? 0 : (uint8_t)(e->len / 8 - 1);
      pos += e->len;
    }
  }

  /* L4 checksum */
  int coff = csum_off_for(l4->proto);
  if (coff >= 0) {
    uint16_t c = 0;
    uint32_t pseudo = l4->proto == 1 ? 0 : pb_pseudo(ip->family, ip->src, ip->dst, l4->proto, l4_len);
    switch (l4->csum) {
      case PB_CSUM_FULL:
      case PB_CSUM_BAD:
        c = (uint16_t)~pb_fold(pb_sum(pseudo, t, l4_len));
        if (l4->proto == 17 && c == 0) c = 0xffff; /* RFC 768: a computed 0 is sent as all ones */
        if (l4->csum == PB_CSUM_BAD) c = (uint16_t)(c + l4->bad_delta);
        break;
      case PB_CSUM_PARTIAL:
        c = pb_fold(pb_pseudo(ip->family, ip->src, ip->dst, l4->proto, l4->partial_len ? l4->partial_len : l4_len));
        break;
      case PB_CSUM_ZERO:
        c = 0;
        break;
    }
    pb_put_be16(t + coff, c);
  }
  return total;
}

/* ---- virtio_net_hdr ---- */
void pb_vnet_write(uint8_t *buf, const struct pb_vnet *v) {
  buf[PB_VNET_FLAGS] = v->flags;
  buf[PB_VNET_GSO_TYPE] = v->gso_type;
  pb_put16_native(buf + PB_VNET_HDR_LEN, v->hdr_len);
  pb_put16_native(buf + PB_VNET_GSO_SIZE, v->gso_size);
  pb_put16_native(buf + PB_VNET_CSUM_START, v->csum_start);
  pb_put16_native(buf + PB_VNET_CSUM_OFFSET, v->csum_offset);
}

void pb_vnet_read(const uint8_t *buf, struct pb_vnet *v) {
  v->flags = buf[PB_VNET_FLAGS];
  v->gso_type = buf[PB_VNET_GSO_TYPE];
  v->hdr_len = get16_native(buf + PB_VNET_HDR_LEN);
  v->gso_size = get16_native(buf + PB_VNET_GSO_SIZE);
  v->csum_start = get16_native(buf + PB_VNET_CSUM_START);
  v->csum_offset = get16_native(buf + PB_VNET_CSUM_OFFSET);
}

uint32_t pb_build(uint8_t *out, uint32_t cap, const struct pb_vnet *vnet, const struct pb_ip *ip,
                  const struct pb_l4 *l4) {
  if (cap < PB_VNET_LEN) return 0;
  uint32_t n = pb_build_ip(out + PB_VNET_LEN, cap - PB_VNET_LEN, ip, l4);
  if (!n) return 0;
  struct pb_vnet v;
  if (vnet) {
    v = *vnet;
  } else {
    memset(&v, 0, sizeof(v));
    if (l4->csum == PB_CSUM_PARTIAL) {
      struct pb_info info;
      if (!pb_parse(out + PB_VNET_LEN, n, &info)) abort();
      v.flags = PB_VNET_F_NEEDS_CSUM;
      v.csum_start = (uint16_t)info.l4_off;
      v.csum_offset = (uint16_t)csum_off_for(l4->proto);
    }
  }
  pb_vnet_write(out, &v);
  return n + PB_VNET_LEN;
}

/* ---- verification ---- */
bool pb_parse(const uint8_t *ip, uint32_t len, struct pb_info *info) {
  memset(info, 0, sizeof(*info));
  if (len < 1) return false;
  if (ip[0] >> 4 == 4) {
    if (len < 20) return false;
    uint32_t ihl = (ip[0] & 15u) * 4;
    if (ihl < 20 || ihl > len) return false;
    info->family = 4;
    info->proto = ip[9];
    info->l3_len = pb_be16(ip + 2);
    info->l4_off = ihl;
    info->src = ip + 12;
    info->dst = ip + 16;
    return true;
  }
  if (ip[0] >> 4 == 6) {
    if (len < 40) return false;
    info->family = 6;
    info->l3_len = 40u + pb_be16(ip + 4);
    info->src = ip + 8;
    info->dst = ip + 24;
    uint8_t next = ip[6];
    uint32_t pos = 40;
    for (int i = 0; i < 16; i++) {
      if (next == 0 || next == 43 || next == 60) {
        if (pos + 2 > len) return false;
        uint8_t n2 = ip[pos];
        pos += ((uint32_t)ip[pos + 1] + 1) * 8;
        next = n2;
      } else if (next == 44) {
        if (pos + 8 > len) return false;
        next = ip[pos];
        pos += 8;
      } else {
        break;
      }
    }
    if (pos > len) return false;
    info->proto = next;
    info->l4_off = pos;
    return true;
  }
  return false;
}

uint16_t pb_ip4_hdr_sum(const uint8_t *ip) { return pb_fold(pb_sum(0, ip, (ip[0] & 15u) * 4)); }

uint16_t pb_l4_sum(const uint8_t *ip, uint32_t len) {
  struct pb_info in;
  if (!pb_parse(ip, len, &in)) return 0;
  uint32_t end = in.l3_len < len ? in.l3_len : len;
  if (end < in.l4_off) return 0;
  uint32_t l4_len = end - in.l4_off;
  uint32_t s = in.proto == 1 ? 0 : pb_pseudo(in.family, in.src, in.dst, in.proto, l4_len);
  return pb_fold(pb_sum(s, ip + in.l4_off, l4_len));
}

int pb_l4_csum_off(const uint8_t *ip, uint32_t len) {
  struct pb_info in;
  if (!pb_parse(ip, len, &in)) return -1;
  int c = csum_off_for(in.proto);
  return c < 0 ? -1 : (int)in.l4_off + c;
}

void pb_finish_partial(uint8_t *ip, uint32_t len, uint16_t csum_start, uint16_t csum_offset, bool udp) {
  uint16_t c = (uint16_t)~pb_fold(pb_sum(0, ip + csum_start, len - csum_start));
  if (udp && c == 0) c = 0xffff;
  pb_put_be16(ip + csum_start + csum_offset, c);
}

/* ones' complement a - b + c on 16-bit values */
static uint16_t oc_adjust(uint16_t seed, uint32_t old_len, uint32_t new_len) {
  uint32_t s = seed;
  s += (uint16_t)~(uint16_t)old_len;
  s += (uint16_t)~(uint16_t)(old_len >> 16);
  s += new_len & 0xffff;
  s += new_len >> 16;
  return pb_fold(s);
}

int pb_gso_split(const uint8_t *buf, uint32_t len, uint8_t *segs, uint32_t stride, uint32_t *lens, int max) {
  struct pb_vnet v;
  pb_vnet_read(buf, &v);
  const uint8_t *ip = buf + PB_VNET_LEN;
  uint32_t iplen = len - PB_VNET_LEN;
  struct pb_info in;
  if (!pb_parse(ip, iplen, &in) || in.l3_len > iplen || v.gso_size == 0) return -1;
  uint8_t gso = v.gso_type & (uint8_t)~PB_GSO_ECN;
  bool tcp = gso == PB_GSO_TCPV4 || gso == PB_GSO_TCPV6;
  if (!tcp && gso != PB_GSO_UDP_L4) return -1;
  uint32_t l4_hdr = tcp ? (uint32_t)(ip[in.l4_off + 12] >> 4) * 4 : 8;
  uint32_t hdr = in.l4_off + l4_hdr;
  if (hdr > in.l3_len) return -1;
  uint32_t payload = in.l3_len - hdr;
  uint32_t super_l4 = in.l3_len - in.l4_off;
  uint16_t seed = pb_be16(ip + in.l4_off + (tcp ? 16 : 6));
  int n = 0;
  for (uint32_t off = 0; off < payload || (payload == 0 && n == 0); off += v.gso_size) {
    if (n >= max) return -1;
    uint32_t seg = payload - off < v.gso_size ? payload - off : v.gso_size;
    bool last = off + seg >= payload;
    uint8_t *o = segs + (size_t)n * stride;
    if (hdr + seg > stride) return -1;
    memcpy(o, ip, hdr);
    memcpy(o + hdr, ip + hdr + off, seg);
    uint32_t total = hdr + seg;
    if (in.family == 4) {
      pb_put_be16(o + 2, (uint16_t)total);
      pb_put_be16(o + 4, (uint16_t)(pb_be16(ip + 4) + n)); /* the kernel increments the IP ID per segment */
      pb_put_be16(o + 10, 0);
      pb_put_be16(o + 10, (uint16_t)~pb_fold(pb_sum(0, o, in.l4_off)));
    } else {
      pb_put_be16(o + 4, (uint16_t)(total - 40));
    }
    uint8_t *t = o + in.l4_off;
    uint32_t seg_l4 = total - in.l4_off;
    if (tcp) {
      pb_put_be32(t + 4, pb_be32(t + 4) + off);
      if (!last) t[13] &= (uint8_t)~(PB_TCP_FIN | PB_TCP_PSH);
      if (n > 0) t[13] &= (uint8_t)~PB_TCP_CWR;
    } else {
      pb_put_be16(t + 4, (uint16_t)seg_l4);
    }
    /* The seed covered the super-packet's length; each segment's pseudo-header has its own. */
    pb_put_be16(t + (tcp ? 16 : 6), oc_adjust(seed, super_l4, seg_l4));
    pb_finish_partial(o, total, (uint16_t)in.l4_off, (uint16_t)(tcp ? 16 : 6), !tcp);
    lens[n++] = total;
    if (payload == 0) break;
  }
  return n;
}

/* ---- misc ---- */
void pb_hexdump_diff(const char *label, const uint8_t *got, uint32_t got_len, const uint8_t *want, uint32_t want_len) {
  uint32_t n = got_len > want_len ? got_len : want_len;
  fprintf(stderr, "    %s: got %u bytes, want %u bytes (offsets from the virtio_net_hdr; * marks a difference)\n",
          label, got_len, want_len);
  int shown = 0;
  for (uint32_t row = 0; row < n && shown < 12; row += 16) {
    bool diff = false;
    for (uint32_t i = row; i < row + 16 && i < n; i++)
      if (i >= got_len || i >= want_len || got[i] != want[i]) diff = true;
    if (!diff) continue;
    shown++;
    fprintf(stderr, "    %05x got :", row);
    for (uint32_t i = row; i < row + 16 && i < n; i++) {
      if (i < got_len) fprintf(stderr, " %02x%c", got[i], (i < want_len && got[i] == want[i]) ? ' ' : '*');
      else fprintf(stderr, " -- ");
    }
    fprintf(stderr, "\n    %05x want:", row);
    for (uint32_t i = row; i < row + 16 && i < n; i++) {
      if (i < want_len) fprintf(stderr, " %02x ", want[i]);
      else fprintf(stderr, " -- ");
    }
    fprintf(stderr, "\n");
  }
}
