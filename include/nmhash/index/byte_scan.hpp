// Exhaustive Hamming scans over codes stored at code_size = ceil(K / 8)
// bytes each, back to back (FAISS's binary layout): top-k and range search
// over a span of positions, and the driver that splits a search across
// threads by query tiles and, when the queries are too few to occupy every
// thread, by database parts as well (so one query's latency falls with the
// thread count).
//
// Byte j of a code holds bits 8j..8j+7, least significant first: the first
// code_size bytes of a packed_codes row on a little-endian machine. Bits at
// positions >= K of the last byte are zero.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <vector>

#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/core/bits.hpp"
#include "nmhash/core/checked.hpp"
#include "nmhash/core/cpu.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/core/parallel.hpp"
#include "nmhash/index/filter.hpp"
#include "nmhash/retrieval/topk.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "nmhash's byte-layout codes assume a little-endian host"
#endif

namespace nmhash {

// Range search result in FAISS's RangeSearchResult layout: the matches of
// query q are entries lims[q] .. lims[q + 1] - 1 of distances and labels,
// in ascending database position.
struct range_result {
  std::size_t queries = 0;
  std::vector<std::size_t> lims;
  std::vector<std::int32_t> distances;
  std::vector<std::int64_t> labels;

  std::size_t count(std::size_t q) const { return lims[q + 1] - lims[q]; }
};

struct scan_options {
  nmhash::threads threads{};
  // Queries per tile: a tile sweeps each database block together.
  std::size_t query_tile = 32;
  // Database codes per block swept by a tile.
  std::size_t database_block = 8192;
  // Smallest database part a thread scans on its own when the queries are
  // too few to give every thread a tile.
  std::size_t min_part = 16384;
};

namespace detail {

inline std::uint64_t load_le64(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline std::uint64_t load_le_partial(const std::uint8_t* p, std::size_t bytes) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, bytes);
  return v;
}

// Distance between query words q (zero past K) and the code at p. CS is the
// code size in bytes known at compile time, 0 for the run-time `cs`. Wide:
// reads whole 8-byte words, up to 7 bytes past the code (the caller keeps
// those inside the buffer); otherwise reads exactly the code's bytes.
template <std::size_t CS, bool Wide>
inline int byte_hamming(const std::uint64_t* NMHASH_RESTRICT q, const std::uint8_t* NMHASH_RESTRICT p,
                        std::size_t cs) {
  const std::size_t n = CS ? CS : cs;
  const std::size_t full = n / 8, tail = n % 8;
  int d = 0;
  if constexpr (CS == 0 || CS >= 8) {
    for (std::size_t w = 0; w < full; ++w) d += popcount64(q[w] ^ load_le64(p + 8 * w));
  }
  if (tail) {
    if constexpr (Wide)
      d += popcount64((q[full] ^ load_le64(p + 8 * full)) & ((std::uint64_t{1} << (8 * tail)) - 1));
    else
      d += popcount64(q[full] ^ load_le_partial(p + 8 * full, tail));
  }
  return d;
}

// Positions [0, wide_end) may be read with whole-word loads: the words of
// code j end inside the n * cs bytes of the buffer.
inline std::size_t wide_end(std::size_t n, std::size_t cs) {
  const std::size_t span = 8 * ((cs + 7) / 8);
  if (cs % 8 == 0) return n;
  const std::size_t total = n * cs;
  return total >= span ? (total - span) / cs + 1 : 0;
}

template <std::size_t CS, isa L = isa::generic, class Selector = topk_selector>
void byte_knn_scan(Selector& sel, const std::uint64_t* NMHASH_RESTRICT q,
                   const std::uint8_t* NMHASH_RESTRICT codes, std::size_t cs, std::size_t begin,
                   std::size_t end, std::size_t wide) {
  if constexpr (CS == 8) {
    if (knn_scan8_vector<L>(sel, q[0], codes, begin, end)) return;
  }
  int hstar = sel.threshold();
  const std::size_t n = CS ? CS : cs;
  std::size_t j = begin;
  const std::size_t we = std::min(end, std::max(begin, wide));
  if constexpr (CS == 8) {
    // Four items per step with one combined threshold test.
    const std::uint64_t q0 = q[0];
    for (; j + 4 <= we; j += 4) {
      const std::uint8_t* p = codes + j * 8;
      const int d0 = popcount64(q0 ^ load_le64(p)), d1 = popcount64(q0 ^ load_le64(p + 8));
      const int d2 = popcount64(q0 ^ load_le64(p + 16)), d3 = popcount64(q0 ^ load_le64(p + 24));
      if (NMHASH_UNLIKELY(std::min(std::min(d0, d1), std::min(d2, d3)) < hstar)) {
        const int d[4] = {d0, d1, d2, d3};
        for (std::size_t u = 0; u < 4; ++u)
          if (d[u] < hstar) {
            sel.accept(d[u], static_cast<std::int64_t>(j + u));
            hstar = sel.threshold();
          }
      }
    }
  }
  for (; j < we; ++j) {
    const int d = byte_hamming<CS, true>(q, codes + j * n, cs);
    if (NMHASH_UNLIKELY(d < hstar)) {
      sel.accept(d, static_cast<std::int64_t>(j));
      hstar = sel.threshold();
    }
  }
  for (; j < end; ++j) {
    const int d = byte_hamming<CS, false>(q, codes + j * n, cs);
    if (d < hstar) {
      sel.accept(d, static_cast<std::int64_t>(j));
      hstar = sel.threshold();
    }
  }
}

// admit: null, or one bit per position (1: admitted), read only for the
// codes within the radius.
template <std::size_t CS>
void byte_range_scan(std::vector<std::int64_t>& pos, std::vector<std::int32_t>& dist,
                     const std::uint64_t* NMHASH_RESTRICT q, const std::uint8_t* NMHASH_RESTRICT codes,
                     std::size_t cs, std::size_t begin, std::size_t end, std::size_t wide, int radius,
                     const std::uint64_t* admit) {
  const std::size_t n = CS ? CS : cs;
  std::size_t j = begin;
  const std::size_t we = std::min(end, std::max(begin, wide));
  const auto admitted = [admit](std::size_t p) { return admit == nullptr || test_bit(admit, p); };
  for (; j < we; ++j) {
    const int d = byte_hamming<CS, true>(q, codes + j * n, cs);
    if (NMHASH_UNLIKELY(d < radius) && admitted(j)) {
      pos.push_back(static_cast<std::int64_t>(j));
      dist.push_back(d);
    }
  }
  for (; j < end; ++j) {
    const int d = byte_hamming<CS, false>(q, codes + j * n, cs);
    if (d < radius && admitted(j)) {
      pos.push_back(static_cast<std::int64_t>(j));
      dist.push_back(d);
    }
  }
}

// Calls f(std::integral_constant<std::size_t, CS>) with the compile-time
// code size for the common sizes (K = 32, 48, 64, 96, 128, 192, 256 bits),
// CS = 0 otherwise.
template <class F>
decltype(auto) dispatch_code_size(std::size_t cs, F&& f) {
  switch (cs) {
    case 4: return f(std::integral_constant<std::size_t, 4>{});
    case 6: return f(std::integral_constant<std::size_t, 6>{});
    case 8: return f(std::integral_constant<std::size_t, 8>{});
    case 12: return f(std::integral_constant<std::size_t, 12>{});
    case 16: return f(std::integral_constant<std::size_t, 16>{});
    case 24: return f(std::integral_constant<std::size_t, 24>{});
    case 32: return f(std::integral_constant<std::size_t, 32>{});
    default: return f(std::integral_constant<std::size_t, 0>{});
  }
}

// How a search of nq queries over n codes is cut into tasks: query tiles of
// `tile` queries times database parts of `part` codes.
struct scan_plan {
  std::size_t tile = 1, tiles = 0, part = 1, parts = 1;
};

inline scan_plan plan_scan(std::size_t nq, std::size_t n, std::size_t tile_cap, const scan_options& opt) {
  scan_plan p;
  p.tile = std::max<std::size_t>(1, std::min(tile_cap, opt.query_tile));
  p.tiles = (nq + p.tile - 1) / p.tile;
  const std::size_t nt = static_cast<std::size_t>(std::max(1, resolve_threads(opt.threads)));
  p.part = std::max<std::size_t>(n, 1);
  if (p.tiles < nt && n > 0) {
    const std::size_t want = (nt + p.tiles - 1) / p.tiles;
    const std::size_t by_size = std::max<std::size_t>(1, n / std::max<std::size_t>(opt.min_part, 1));
    const std::size_t parts = std::max<std::size_t>(1, std::min(want, by_size));
    p.part = (n + parts - 1) / parts;
  }
  p.parts = n == 0 ? 1 : (n + p.part - 1) / p.part;
  return p;
}

// The query as whole words, zero past K, for byte_hamming.
inline void query_words(const packed_codes& q, std::size_t i, std::size_t words, std::uint64_t* out) {
  std::fill(out, out + words, std::uint64_t{0});
  std::copy(q.row(i), q.row(i) + q.words_per_code(), out);
}

}  // namespace detail

// Top-k of every query over n codes of `bits` bits at `codes`: positions in
// (distance, position) order, FAISS's padding past n (distance INT32_MAX,
// position -1). admit: null, or one bit per position: only positions whose
// bit is 1 are returned (read only for candidates that would enter the top
// k, filter.hpp).
inline knn_result byte_codes_knn(const packed_codes& queries, const std::uint8_t* codes, std::size_t n,
                                 std::size_t bits, std::size_t k, const scan_options& opt = {},
                                 const std::uint64_t* admit = nullptr) {
  require(queries.bits() == bits, "search: the queries have K = ", queries.bits(),
          " bits but the index holds K = ", bits, " bits");
  require(k >= 1, "search: k must be at least 1, got 0");
  require(opt.query_tile >= 1 && opt.database_block >= 1, "search: query_tile and database_block must be positive");
  const std::size_t nq = queries.size();
  const std::size_t cs = (bits + 7) / 8;
  knn_result res = detail::allocate_knn(nq, k, "search");
  if (nq == 0) return res;
  const std::size_t words = (cs + 7) / 8;
  const std::size_t wide = detail::wide_end(n, cs);
  // A selector buffers up to 2k candidates (10 bytes each); keep a tile's
  // buffers within ~8 MiB.
  const auto plan = detail::plan_scan(nq, n, std::max<std::size_t>(1, (std::size_t{8} << 20) / (20 * k + 1)), opt);
  // Per (query, part) sorted lists when the database is split.
  std::vector<std::int32_t> part_d;
  std::vector<std::int64_t> part_i;
  if (plan.parts > 1) {
    const std::size_t e = checked_mul(res.distances.size(), plan.parts, "search: per-part results");
    try {
      part_d.resize(e);
      part_i.resize(e);
    } catch (const std::exception&) {
      detail::fail("search: cannot allocate the per-part results of ", nq, " queries x k = ", k, " x ", plan.parts,
                   " parts");
    }
  }
  const std::size_t tasks = plan.tiles * plan.parts;
  detail::dispatch_code_size(cs, [&](auto c) {
    constexpr std::size_t CS = decltype(c)::value;
    parallel_for(static_cast<std::int64_t>(tasks), opt.threads, 1, [&](std::int64_t task) {
      const std::size_t t = static_cast<std::size_t>(task) / plan.parts;
      const std::size_t p = static_cast<std::size_t>(task) % plan.parts;
      const std::size_t q0 = t * plan.tile, q1 = std::min(nq, q0 + plan.tile);
      const std::size_t b0 = std::min(n, p * plan.part), b1 = std::min(n, b0 + plan.part);
      std::vector<std::uint64_t> qw((q1 - q0) * words);
      std::vector<detail::topk_selector> sel;
      sel.reserve(q1 - q0);
      for (std::size_t q = q0; q < q1; ++q) {
        detail::query_words(queries, q, words, qw.data() + (q - q0) * words);
        sel.emplace_back(k, bits, b1 - b0);
      }
      with_isa([&](auto level) {
        constexpr isa L = decltype(level)::value;
        for (std::size_t b = b0; b < b1; b += opt.database_block) {
          const std::size_t e = std::min(b1, b + opt.database_block);
          for (std::size_t q = q0; q < q1; ++q) {
            if (admit == nullptr) {
              detail::byte_knn_scan<CS, L>(sel[q - q0], qw.data() + (q - q0) * words, codes, cs, b, e, wide);
            } else {
              detail::admitted_selector<detail::topk_selector> only{sel[q - q0], admit};
              detail::byte_knn_scan<CS, L>(only, qw.data() + (q - q0) * words, codes, cs, b, e, wide);
            }
          }
        }
      });
      for (std::size_t q = q0; q < q1; ++q) {
        const std::size_t off = plan.parts > 1 ? (q * plan.parts + p) * k : q * k;
        std::int32_t* od = plan.parts > 1 ? part_d.data() + off : res.distances.data() + off;
        std::int64_t* oi = plan.parts > 1 ? part_i.data() + off : res.indices.data() + off;
        sel[q - q0].finish(od, oi);
      }
    });
  });
  if (plan.parts > 1) {
    // Part p holds positions below those of part p + 1, so taking the
    // candidates by distance, parts in order, keeps (distance, position).
    parallel_for(static_cast<std::int64_t>(nq), opt.threads, 16, [&](std::int64_t qi) {
      const std::size_t q = static_cast<std::size_t>(qi);
      std::vector<std::size_t> at(plan.parts, 0);
      std::int32_t* od = res.distances.data() + q * k;
      std::int64_t* oi = res.indices.data() + q * k;
      for (std::size_t r = 0; r < k; ++r) {
        std::size_t best = plan.parts;
        std::int32_t bd = std::numeric_limits<std::int32_t>::max();
        for (std::size_t p = 0; p < plan.parts; ++p) {
          if (at[p] == k) continue;
          const std::size_t off = (q * plan.parts + p) * k + at[p];
          if (part_i[off] >= 0 && part_d[off] < bd) {
            bd = part_d[off];
            best = p;
          }
        }
        if (best == plan.parts) {
          od[r] = std::numeric_limits<std::int32_t>::max();
          oi[r] = -1;
          continue;
        }
        const std::size_t off = (q * plan.parts + best) * k + at[best]++;
        od[r] = part_d[off];
        oi[r] = part_i[off];
      }
    });
  }
  return res;
}

// Every code at distance < radius (strict, as FAISS's binary range search)
// from each query, in ascending position; admit as for byte_codes_knn.
inline range_result byte_codes_range(const packed_codes& queries, const std::uint8_t* codes, std::size_t n,
                                     std::size_t bits, int radius, const scan_options& opt = {},
                                     const std::uint64_t* admit = nullptr) {
  require(queries.bits() == bits, "range_search: the queries have K = ", queries.bits(),
          " bits but the index holds K = ", bits, " bits");
  require(opt.query_tile >= 1, "range_search: query_tile must be positive");
  const std::size_t nq = queries.size();
  const std::size_t cs = (bits + 7) / 8;
  const std::size_t words = (cs + 7) / 8;
  const std::size_t wide = detail::wide_end(n, cs);
  const auto plan = detail::plan_scan(nq, n, opt.query_tile, opt);
  std::vector<std::vector<std::int64_t>> pos(nq * plan.parts);
  std::vector<std::vector<std::int32_t>> dist(nq * plan.parts);
  detail::dispatch_code_size(cs, [&](auto c) {
    constexpr std::size_t CS = decltype(c)::value;
    parallel_for(static_cast<std::int64_t>(plan.tiles * plan.parts), opt.threads, 1, [&](std::int64_t task) {
      const std::size_t t = static_cast<std::size_t>(task) / plan.parts;
      const std::size_t p = static_cast<std::size_t>(task) % plan.parts;
      const std::size_t q0 = t * plan.tile, q1 = std::min(nq, q0 + plan.tile);
      const std::size_t b0 = std::min(n, p * plan.part), b1 = std::min(n, b0 + plan.part);
      std::vector<std::uint64_t> qw(words);
      for (std::size_t q = q0; q < q1; ++q) {
        detail::query_words(queries, q, words, qw.data());
        with_isa([&](auto) {
          detail::byte_range_scan<CS>(pos[q * plan.parts + p], dist[q * plan.parts + p], qw.data(), codes, cs,
                                      b0, b1, wide, radius, admit);
        });
      }
    });
  });
  range_result r;
  r.queries = nq;
  r.lims.assign(nq + 1, 0);
  for (std::size_t q = 0; q < nq; ++q) {
    std::size_t c = 0;
    for (std::size_t p = 0; p < plan.parts; ++p) c += pos[q * plan.parts + p].size();
    r.lims[q + 1] = r.lims[q] + c;
  }
  r.distances.resize(r.lims[nq]);
  r.labels.resize(r.lims[nq]);
  for (std::size_t q = 0; q < nq; ++q) {
    std::size_t at = r.lims[q];
    for (std::size_t p = 0; p < plan.parts; ++p) {
      auto& ps = pos[q * plan.parts + p];
      auto& ds = dist[q * plan.parts + p];
      std::copy(ps.begin(), ps.end(), r.labels.begin() + static_cast<std::ptrdiff_t>(at));
      std::copy(ds.begin(), ds.end(), r.distances.begin() + static_cast<std::ptrdiff_t>(at));
      at += ps.size();
    }
  }
  return r;
}

}  // namespace nmhash
