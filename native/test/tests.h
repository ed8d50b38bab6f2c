/* Every core_test test, in run order. X(name, description); each is `void test_<name>(void)`. */
#ifndef L4NAT_TEST_TESTS_H
#define L4NAT_TEST_TESTS_H

#define CORE_TESTS(X)                                                                                         \
  /* core_test.c: units */                                                                                    \
  X(flow_entry_size, "a flow entry is 64 bytes, its key 40")                                                  \
  X(siphash_vectors, "SipHash-2-4 reference vectors (key 00..0f, messages 00..len-1)")                        \
  X(builder_selfcheck, "the packet builder's checksums against known packets")                                \
  X(tables_validation, "l4_tables_build rejects ambiguous or inconsistent input with a clear message")        \
  /* core_test.c: translation */                                                                              \
  X(translate_v4_v6_tcp_udp, "forward (DNAT incl. port change) and reply, v4/v6 x TCP/UDP")                   \
  X(translate_counters, "forward/reply/tx counters and per-service/backend counters")                         \
  X(udp_zero_csum_v4, "UDP checksum 0 stays 0 on IPv4, both directions")                                      \
  X(udp_result_zero_is_ffff, "a UDP checksum that computes to 0 is sent as 0xffff")                           \
  X(bad_l4_csum_stays_bad, "a bad L4 checksum stays bad by exactly the same amount")                          \
  X(trailing_bytes_trimmed, "bytes past the IP length are cut off")                                           \
  X(gso_super_packets, "TSO4 (+ECN), TSO6, UDP_L4 super-packets rewritten whole; segments validate")          \
  X(checksum_partial, "CHECKSUM_PARTIAL packets: only the address folded into the seed")                      \
  X(source_hash_service, "a source-hashed service sends every port of a client to one backend")               \
  /* core_test_flows.c */                                                                                     \
  X(flow_syn_pins, "a SYN creates an entry; the flow keeps its backend after a republish")                    \
  X(flow_nonsyn_miss, "a non-SYN without entry is forwarded by the ring and creates no entry")                \
  X(flow_pickup, "a backend reply without entry creates one (pick-up), established once the client answers")   \
  X(flow_rst_close_revive, "RST -> close timeout; a later non-RST packet revives the flow")                    \
  X(flow_fin_both_ways, "FIN both ways -> close timeout")                                                     \
  X(flow_syn_on_closed_repicks, "a SYN on a closed entry re-picks; on a live one it keeps")                    \
  X(flow_syn_unanswered_repicks, "a retransmitted SYN its backend never answered follows a moved ring")       \
  X(flow_backend_removed, "a pinned backend removed from the tables: ring fallback and re-pin")               \
  X(flow_udp, "UDP: the first datagram pins, the UDP timeout unpins")                                         \
  X(flow_eviction, "a full bucket evicts non-established entries first, and counts it")                       \
  X(flow_backend_resets, "a backend RST counts for passive health on a live flow, not after both FINs")       \
  X(flow_touch_stale_ref, "a state update after a removal or a reuse of the entry changes nothing")           \
  X(flow_syn_reuse_off_ring, "a SYN reusing a draining backend's live tuple goes to the ring at once")        \
  X(flow_age, "an entry's age runs from its creation, kept by packets and state changes, reset by a reuse")   \
  /* core_test_icmp.c */                                                                                      \
  X(icmp_frag_needed_v4, "frag-needed to the VIP quoting our reply goes to the pinned backend")                \
  X(icmp_port_unreach_v4, "port unreachable from a backend comes from the VIP, quote client->VIP")            \
  X(icmp_ptb_v6, "ICMPv6 packet too big, both directions")                                                    \
  X(icmp_not_ours, "an error quoting a foreign flow is dropped icmp_not_ours")                                \
  X(icmp_echo, "echo requests to a VIP are answered (v4/v6), others dropped")                                 \
  X(icmp_from_this_host, "an error the LB host sent itself (a local source) comes out from the VIP")          \
  /* core_test_malformed.c */                                                                                 \
  X(classify_drops, "not_service, vip_port_unknown, unsupported_proto, no_backend")                           \
  X(fragments, "IPv4 MF / offset and the IPv6 fragment header are dropped as fragment")                       \
  X(ipv6_ext_headers, "hop-by-hop and destination options skipped; routing with segments left dropped")       \
  X(malformed_headers, "bad IHL, total length, version, IPv4 checksum, TCP data offset, UDP length")          \
  X(bad_vnet_hdr, "virtio_net_hdr inconsistent with the packet")                                              \
  X(every_prefix_dropped, "every prefix (0..len-1) of valid packets is dropped with a reason")                 \
  X(l4_cut_short, "IP length consistent, L4 header cut short")                                                \
  /* core_test_mt.c */                                                                                        \
  X(mt_flow_table_one_bucket, "4 threads, one bucket: no lost pinning, no duplicate entries")                 \
  X(mt_flow_table_wide, "4 threads, 256 keys: no lost pinning")                                               \
  X(mt_dataplane_pinning, "4 workers with different rings on one flow table: a flow keeps one backend")      \
  /* core_test_protect.c */                                                                                   \
  X(acl_allow_deny, "source CIDR lists: deny wins, allow entries restrict, other services unaffected")        \
  X(acl_validation, "bad CIDR lists and limits are rejected with a clear message")                            \
  X(rate_limit, "per-source new-flow token bucket: burst, refill, cap, clock wrap; live flows pass")         \
  X(udp6_zero_csum_dropped, "UDP over IPv6 with checksum 0 is dropped as bad_l4_header")                    \
  X(synack_pickup_half_open, "a SYN-ACK without entry is picked up half-open; a mid-flow reply until the client answers") \
  /* core_test_probe.c */                                                                                     \
  X(probe_syn_bytes, "the data-plane probe SYN, v4 and v6, byte for byte")                                    \
  X(probe_answer, "a SYN-ACK to the probe address is counted and answered with a RST; a RST is consumed")     \
  X(probe_forged_answers, "answers not matching the backend's outstanding probe (port, ack) count for nothing") \
  X(per_service_timeouts, "a service's own idle timeouts apply to its flows; others keep the defaults")      \
  X(flow_walk_pages, "paging through the flow table with a cursor visits every entry once")                  \
  X(second_chance, "a backend's reset of a flow it never had re-pins it to the previous ring's choice")       \
  /* core_test_spoof.c */                                                                                     \
  X(ack_flood_after_ring_change, "spoofed ACK+RST pairs after a ring change: no real flow evicted, none pinned to a drained backend") \
  X(reply_pickup_flood, "spoofed backend-sourced replies: picked up unconfirmed, no real flow evicted")      \
  /* core_test_sync.c */                                                                                     \
  X(sync_divergent_log, "an entry pinned against the ring or picked up is logged once, its close once; convergent, a guess or sync off: nothing") \
  X(sync_log_full, "the sync log is bounded: a record past the end is dropped and counted")                  \
  X(sync_learn, "a peer's entry learned: pins the flow, listed learned, expires; a live local entry wins")    \
  X(sync_other_reset, "sync on: the ring's backend resetting a flow pinned elsewhere here is swallowed, the entry re-logged") \
  /* core_test_coalesce.c */                                                                                  \
  X(coalesce_udp_runs, "UDP runs merged into one GSO super-packet split back into the same datagrams")       \
  X(coalesce_refusals, "datagrams the segmentation would not reproduce are never merged")                  \
  /* core_test_busypoll.c */                                                                                  \
  X(busypoll_window, "the spin window grows on gaps it missed, holds on gaps it caught, halves on long ones") \
  /* core_test_query.c */                                                                                     \
  X(packet_offsets, "the named IP/TCP/UDP header offsets (packet.h, the steering program's) match built packets") \
  X(flow_classes, "an entry's listed state from its protocol and bits, the same as its idle timeout's")        \
  X(flow_filter, "flow filters (slots, client, states) take exactly their entries; limit and paging")         \
  X(flow_remove_matching, "removal by filter removes exactly the matches, up to a limit")                     \
  X(flow_stats, "per-slot live counts, closed entries apart; pages add up to the whole")                      \
  /* core_test_explain.c */                                                                                   \
  X(explain_new_tuple, "explain: a new tuple's ring slot and backend are what l4_process then picks; read only") \
  X(explain_established_entry, "explain: an established entry, pinned against the ring, on a draining backend") \
  X(explain_syn, "explain --syn: a SYN leaving an entry (backend leaving, after a FIN, retransmitted) goes where said") \
  X(explain_acl_and_rate, "explain: the deciding source-list entry; the rate-limit bucket without taking tokens") \
  X(explain_drops, "explain: no_backend, vip_port_unknown, not_service as l4_process drops them")             \
  X(flow_moves, "moves a candidate ring would make, per backend, equal where l4_process sends the flows") \
  /* core_test_trace.c */                                                                                     \
  X(trace_records, "a traced flow's SYN, SYN-ACK, data and mid-flow packets: tuple before/after, verdict; others none") \
  X(trace_drops, "drops-only and service matches: acl_denied recorded with its reason, parse drops without a tuple") \
  X(trace_backend_ring_full, "a backend match; a full ring keeps the oldest and counts the rest; traced bytes unchanged") \
  /* core_test_segment.c */                                                                                   \
  X(flow_segment_header, "flow table file header: compatible; truncated, magic, corrupt, layout, capacity, key, no slot map") \
  X(flow_segment_slots, "the slot map is double-buffered; one too big leaves none current") \
  X(flow_segment_repair, "taking over after a crash frees half-written entries and releases held bucket locks") \
  /* core_test_admission.c */                                                                                 \
  X(active_counts, "active counts: insert, close, reopen, replace, FIN, UDP, remove, evict, rebuild, expiry and sweep (margin)") \
  X(bound_next_candidate, "bounded 1.25: a SYN whose ring backend is at its bound goes to the next; maglev does not") \
  X(admission_weights, "weights as slow start publishes them (x4) share the bound alike; past the word's limit: refused") \
  X(limit_next_candidate, "max_flows: the next candidate; established and mid-flow packets pass; a close frees a place") \
  X(full_drop, "every backend at max_flows, when_full drop: dropped, counted; established flows keep flowing") \
  X(full_reject_tcp, "every backend full, when_full reject: the SYN answered with RST+ACK from the VIP (v4, v6)") \
  X(full_reject_udp, "every backend full, reject: ICMP/ICMPv6 port unreachable quoting the datagram, truncated; no room: drop") \
  X(admission_retransmit, "a SYN retransmission of a flow admission sent off its ring slot stays there, not refused") \
  X(mt_active_counts, "threads insert, close, reopen and sweep: the counts equal a full recount, then 0")

#define DECLARE_TEST(name, desc) void test_##name(void);
CORE_TESTS(DECLARE_TEST)
#undef DECLARE_TEST

#endif
