// The nmhash Python module: the binary index, exact top-k and the
// retrieval metrics on numpy arrays (pybind11). See docs/python.md.
//
// Codes are accepted in two forms (anything numpy.asarray converts):
// - uint8 arrays of shape (n, ceil(K / 8)): packed bytes, bit j of a code
//   in byte j / 8 at bit j % 8 (FAISS's layout, numpy.packbits(...,
//   bitorder="little")); K is `bits` (an Index's own length), by default
//   8 x the number of columns. Without `bits`, a uint8 array holding only 0
//   and 1 is refused: it may as well be one bit per column
//   (numpy.unpackbits' output), so the layout must be said;
// - float or signed integer arrays of shape (n, K): one value per bit,
//   bit = 1 where the value is >= 0 (sgn with sgn(0) = +1, the protocol's
//   rule for network outputs and +-1 codes); bool arrays: bit = the value.
//   Integer arrays holding only 0 and 1 are refused (under the sign rule
//   every 0 would become a 1), and so are unsigned arrays other than
//   packed bytes (they cannot hold -1): pass bits as bool.
// Every refusal is a ValueError (nmhash.Error) naming the argument. Long
// calls release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/codes/pack.hpp"
#include "nmhash/index/binary_index.hpp"
#include "nmhash/index/index_io.hpp"
#include "nmhash/retrieval/labels.hpp"
#include "nmhash/retrieval/metrics.hpp"
#include "nmhash/retrieval/topk.hpp"

#ifndef NMHASH_VERSION_STRING
#error "NMHASH_VERSION_STRING: the build defines it from the project version (python/CMakeLists.txt)"
#endif

namespace py = pybind11;

namespace {

using nmhash::packed_codes;

[[noreturn]] void refuse(const std::string& what) { throw nmhash::error(what); }

std::string dtype_name(const py::dtype& dt) { return py::str(py::reinterpret_borrow<py::object>(dt)).cast<std::string>(); }

// An argument as a numpy array: arrays as they are, anything else through
// numpy.asarray; what numpy cannot convert (or converts to objects or
// strings) is refused naming the argument.
py::array as_array(const py::handle& obj, const std::string& what) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  py::object a;
  try {
    a = py::module_::import("numpy").attr("asarray")(obj);
  } catch (py::error_already_set& e) {
    std::string why = py::str(e.value()).cast<std::string>();
    if (why.size() > 160) why = why.substr(0, 160) + "...";
    refuse(what + ": cannot be read as a numpy array (" + py::str(py::type::of(obj).attr("__name__")).cast<std::string>() +
           "): " + why);
  }
  py::array arr = py::reinterpret_borrow<py::array>(a);
  const char kind = arr.dtype().kind();
  if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f')
    refuse(what + ": expected numbers, found " + py::str(py::type::of(obj).attr("__name__")).cast<std::string>() +
           " converting to numpy dtype " + dtype_name(arr.dtype()));
  return arr;
}

// An integer argument within [lo, hi], as the command-line tools bound it.
std::int64_t bounded(const char* what, std::int64_t v, std::int64_t lo, std::int64_t hi) {
  if (v < lo || v > hi)
    refuse(std::string(what) + ": " + std::to_string(v) + " is outside [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "]");
  return v;
}

constexpr std::int64_t max_threads = 1024;
constexpr std::int64_t max_k = std::numeric_limits<std::uint32_t>::max();

int threads_arg(std::int64_t t) { return static_cast<int>(bounded("threads", t, 0, max_threads)); }

std::vector<std::size_t> cutoffs(const char* what, const std::vector<std::int64_t>& v) {
  std::vector<std::size_t> out;
  for (const auto x : v) out.push_back(static_cast<std::size_t>(bounded(what, x, 1, max_k)));
  return out;
}

template <class T>
packed_codes pack_values(const py::array& a, const std::string& what) {
  const auto x = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!x) refuse(what + ": cannot read the array as " + dtype_name(py::dtype::of<T>()));
  const auto n = static_cast<std::size_t>(x.shape(0)), k = static_cast<std::size_t>(x.shape(1));
  if (k < 1 || k > nmhash::max_code_bits)
    refuse(what + ": codes of shape (n, K) need 1 <= K <= " + std::to_string(nmhash::max_code_bits) +
           ", found K = " + std::to_string(k));
  const T* p = x.data();
  packed_codes c(n, k);
  if constexpr (std::is_same_v<T, bool>) {
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < k; ++j)
        if (p[i * k + j]) c.row(i)[j / 64] |= std::uint64_t{1} << (j % 64);
    return c;
  } else {
    if constexpr (std::is_integral_v<T>) {
      bool zero = false, other = false;
      for (std::size_t i = 0; i < n * k; ++i) {
        zero |= p[i] == 0;
        other |= p[i] != 0 && p[i] != 1;
      }
      if (zero && !other)
        refuse(what +
               ": an integer array of 0 and 1 values is ambiguous under the sign rule (0 >= 0 gives bit 1); "
               "pass 0/1 bits as a bool array (x.astype(bool)) or +-1 values");
    }
    return nmhash::pack_signs(p, n, k);
  }
}

bool is_uint8(const py::array& a) { return a.dtype().kind() == 'u' && a.dtype().itemsize() == 1; }

// Codes from an argument (see the file comment). bits: 0, or the code
// length K of packed uint8 codes (which also says the array is packed).
packed_codes to_codes(const py::handle& obj, std::int64_t bits_arg, const std::string& what) {
  const std::size_t bits =
      static_cast<std::size_t>(bounded("bits", bits_arg, 0, static_cast<std::int64_t>(nmhash::max_code_bits)));
  const py::array a = as_array(obj, what);
  if (a.ndim() != 2)
    refuse(what + ": codes must be a 2-D array (n, K) or (n, ceil(K/8)), found " + std::to_string(a.ndim()) +
           " dimensions");
  const py::dtype dt = a.dtype();
  if (is_uint8(a)) {
    const auto x = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>::ensure(a);
    const auto n = static_cast<std::size_t>(x.shape(0)), cols = static_cast<std::size_t>(x.shape(1));
    if (bits == 0) {
      bool other = false;
      for (std::size_t i = 0; i < n * cols && !other; ++i) other = x.data()[i] > 1;
      if (!other && n * cols > 0)
        refuse(what + ": a uint8 array of only 0 and 1 is ambiguous: packed bytes or one bit per column "
                      "(numpy.unpackbits)? pass bits=K to read it as packed codes of K bits, or x.astype(bool) "
                      "for one bit per column");
    }
    const std::size_t k = bits ? bits : 8 * cols;
    if (k < 1 || k > nmhash::max_code_bits)
      refuse(what + ": code length K = " + std::to_string(k) + " is outside [1, " +
             std::to_string(nmhash::max_code_bits) + "]");
    if (nmhash::bytes_for_bits(k) != cols) {
      std::string hint;
      if (cols == k) hint = "; for one bit per column pass x.astype(bool)";
      refuse(what + ": packed codes of K = " + std::to_string(k) + " bits have " +
             std::to_string(nmhash::bytes_for_bits(k)) + " bytes per row, the array has " + std::to_string(cols) +
             hint);
    }
    nmhash::detail::check_code_padding(x.data(), n, k, what.c_str());
    return nmhash::from_packed_bytes(x.data(), n * cols, n, k, nmhash::bit_order::lsb_first);
  }
  switch (dt.kind()) {
    case 'b': return pack_values<bool>(a, what);
    case 'f': return dt.itemsize() == 4 ? pack_values<float>(a, what) : pack_values<double>(a, what);
    case 'i': return pack_values<std::int64_t>(a, what);
    case 'u':
      refuse(what + ": unsigned values (" + dtype_name(dt) +
             ") cannot carry the sign rule's -1: pass 0/1 bits as bool, +-1 codes as a signed or float type, "
             "packed bytes as uint8");
    default: break;
  }
  refuse(what + ": codes must be uint8 packed bytes or numeric/bool values, found dtype " + dtype_name(dt));
}

// Codes for an index: packed bytes are read at the index's code length.
packed_codes index_codes(const nmhash::binary_index& idx, const py::handle& obj, const std::string& what) {
  const py::array a = as_array(obj, what);
  return to_codes(a, is_uint8(a) ? static_cast<std::int64_t>(idx.bits()) : 0, what);
}

py::array_t<std::uint8_t> to_bytes(const packed_codes& c) {
  py::array_t<std::uint8_t> out({static_cast<py::ssize_t>(c.size()),
                                 static_cast<py::ssize_t>(nmhash::bytes_for_bits(c.bits()))});
  nmhash::to_packed_bytes(c, out.mutable_data(), nmhash::bit_order::lsb_first);
  return out;
}

// int64 ids; unsigned ids above INT64_MAX are refused (they would wrap,
// 2^64 - 1 onto the padding id -1).
std::vector<std::int64_t> to_ids(const py::handle& obj, std::size_t expect, const std::string& what) {
  const py::array a = as_array(obj, what);
  if (a.ndim() != 1)
    refuse(what + ": ids must be a 1-D array, found " + std::to_string(a.ndim()) + " dimensions");
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    refuse(what + ": ids must be integers, found dtype " + dtype_name(a.dtype()));
  std::vector<std::int64_t> ids(static_cast<std::size_t>(a.shape(0)));
  if (kind == 'u') {
    const auto x = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (x.data()[i] > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        refuse(what + ": id " + std::to_string(x.data()[i]) + " at " + std::to_string(i) +
               " does not fit int64 (ids are int64, as FAISS's)");
      ids[i] = static_cast<std::int64_t>(x.data()[i]);
    }
  } else {
    const auto x = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    if (!ids.empty()) std::memcpy(ids.data(), x.data(), ids.size() * sizeof(std::int64_t));
  }
  if (expect != static_cast<std::size_t>(-1) && ids.size() != expect)
    refuse(what + ": " + std::to_string(expect) + " codes but " + std::to_string(ids.size()) + " ids");
  return ids;
}

nmhash::labels to_labels(const py::handle& obj, std::size_t n, const std::string& what) {
  const py::array a = as_array(obj, what);
  if (a.ndim() == 1) {
    if (a.dtype().kind() != 'i' && a.dtype().kind() != 'u')
      refuse(what + ": class ids must be integers, found dtype " + dtype_name(a.dtype()));
    const auto x = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    const auto xu = py::array_t<std::uint64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    std::vector<std::int32_t> ids(static_cast<std::size_t>(x.shape(0)));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const bool too_big = a.dtype().kind() == 'u' ? xu.data()[i] > static_cast<std::uint64_t>(INT32_MAX)
                                                   : (x.data()[i] < INT32_MIN || x.data()[i] > INT32_MAX);
      if (too_big)
        refuse(what + ": class id " +
               (a.dtype().kind() == 'u' ? std::to_string(xu.data()[i]) : std::to_string(x.data()[i])) + " at " +
               std::to_string(i) + " does not fit 32 bits");
      ids[i] = static_cast<std::int32_t>(x.data()[i]);
    }
    if (ids.size() != n)
      refuse(what + ": " + std::to_string(ids.size()) + " labels for " + std::to_string(n) + " codes");
    return nmhash::labels::single(std::move(ids));
  }
  if (a.ndim() == 2) {
    if (a.shape(1) == 1)
      refuse(what + ": a (n, 1) column is ambiguous: pass class ids as a 1-D array (labels.ravel()), or a "
                    "multi-hot matrix with one column per class");
    const auto x = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
    if (static_cast<std::size_t>(x.shape(0)) != n)
      refuse(what + ": " + std::to_string(x.shape(0)) + " label rows for " + std::to_string(n) + " codes");
    try {
      return nmhash::labels::multi_hot(x.data(), static_cast<std::size_t>(x.shape(0)),
                                       static_cast<std::size_t>(x.shape(1)));
    } catch (const nmhash::error& e) {
      refuse(what + ": " + e.what());
    }
  }
  refuse(what + ": labels must be class ids (1-D) or a multi-hot matrix (2-D), found " + std::to_string(a.ndim()) +
         " dimensions");
}

py::tuple knn_arrays(const nmhash::knn_result& r) {
  const std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(r.queries), static_cast<py::ssize_t>(r.k)};
  py::array_t<std::int32_t> d(shape);
  py::array_t<std::int64_t> i(shape);
  if (!r.distances.empty()) std::memcpy(d.mutable_data(), r.distances.data(), r.distances.size() * sizeof(std::int32_t));
  if (!r.indices.empty()) std::memcpy(i.mutable_data(), r.indices.data(), r.indices.size() * sizeof(std::int64_t));
  return py::make_tuple(d, i);
}

template <class T>
py::array_t<T> vector_array(const std::vector<T>& v) {
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(T));
  return a;
}

nmhash::scan_options scan_with(std::int64_t threads) {
  nmhash::scan_options o;
  o.threads.count = threads_arg(threads);
  return o;
}

std::vector<std::int64_t> default_precision_at() {
  const nmhash::evaluation_options defaults;
  return {defaults.precision_at.begin(), defaults.precision_at.end()};
}

std::size_t k_arg(std::int64_t k) { return static_cast<std::size_t>(bounded("k", k, 1, max_k)); }

// The filter of allow_ids / deny_ids (None: no list).
nmhash::search_filter filter_of(const py::object& allow_ids, const py::object& deny_ids, const std::string& who) {
  nmhash::search_filter f;
  if (!allow_ids.is_none()) f.allow = to_ids(allow_ids, static_cast<std::size_t>(-1), who + " allow_ids");
  if (!deny_ids.is_none()) f.deny = to_ids(deny_ids, static_cast<std::size_t>(-1), who + " deny_ids");
  return f;
}

py::array_t<std::int64_t> index_ids(const nmhash::binary_index& idx) {
  std::vector<std::int64_t> ids(idx.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = idx.id(i);
  return vector_array(ids);
}

constexpr const char* evaluate_doc = R"doc(Retrieval metrics of queries against a database by Hamming ranking.

Labels are class ids (1-D integers, relevant iff equal) or a multi-hot
matrix (n, C) of 0 and 1 (relevant iff a label is shared). map_at=[k]
gives MAP@k (DeepHash's topk MAP); map_at, precision_at in [1, 2^32 - 1],
radius in [0, 65536], threads in [0, 1024] (0: all cores).

Returns a dict with the keys:
  queries, database, bits       the counts and the code length K
  map                           tie-aware MAP (every order of equal
                                distances averaged; the protocol's)
  map_index_order               ties broken by database index, as a stable
                                argsort gives (index_order=True only)
  map_at                        {k: MAP@k, tie-aware}
  map_at_index_order            {k: MAP@k, index order} (index_order=True)
  precision_at                  {N: precision@N, tie-aware}
  precision_at_index_order      {N: precision@N, index order}
                                (index_order=True)
  radius                        the Hamming radius of the next two
  precision_within_radius       precision of the items at distance <= radius
  recall_within_radius          recall of the same
  pr_curve                      float64 (K + 1, 2): precision and recall
                                within radius r = 0..K
  ap                            float64 (nq,): each query's tie-aware AP
                                (per_query=True only)
  ap_index_order                each query's index-order AP (per_query=True
                                and index_order=True)
)doc";

// The numpy this module was imported into must be one its pybind11 reads
// correctly: pybind11 before 2.12 misreads numpy 2's dtypes.
void check_numpy_abi() {
#if PYBIND11_VERSION_HEX < 0x020C0000
  const std::string v = py::str(py::module_::import("numpy").attr("__version__")).cast<std::string>();
  if (!v.empty() && v[0] != '0' && v[0] != '1') {
    // PYBIND11_MODULE turns a std::exception into ImportError(what()).
    throw std::runtime_error("nmhash: this module was built with pybind11 " PYBIND11_TOSTRING(
                                 PYBIND11_VERSION_MAJOR) "." PYBIND11_TOSTRING(PYBIND11_VERSION_MINOR) ", which misreads numpy " +
                             v + "'s arrays; rebuild it with pybind11 >= 2.12 (pip install .)");
  }
#endif
}

}  // namespace

PYBIND11_MODULE(nmhash, m) {
  check_numpy_abi();
  m.doc() =
      "nmhash: exact Hamming search and retrieval metrics on binary codes.\n\n"
      "Codes are uint8 packed bytes (n, ceil(K/8)) in FAISS's bit order (numpy.packbits(..., bitorder='little')), "
      "or one value per bit (n, K): bit = value >= 0 (sign rule), bool arrays as bits. A uint8 array of only 0 and "
      "1 needs bits=K (packed) or .astype(bool) (one bit per column).";
  m.attr("__version__") = NMHASH_VERSION_STRING;
  py::register_exception<nmhash::error>(m, "Error", PyExc_ValueError);

  m.def(
      "pack",
      [](const py::object& x, std::int64_t bits) {
        const packed_codes c = to_codes(x, bits, "pack x");
        return to_bytes(c);
      },
      py::arg("x"), py::arg("bits") = 0,
      "Packs (n, K) values into uint8 codes (n, ceil(K/8)): bit = value >= 0, or the value of a bool array. "
      "Packed uint8 input is checked and returned as it is.");

  m.def(
      "hamming_knn",
      [](const py::object& queries, const py::object& database, std::int64_t k, std::int64_t bits,
         std::int64_t threads) {
        const packed_codes q = to_codes(queries, bits, "hamming_knn queries");
        const packed_codes db = to_codes(database, bits, "hamming_knn database");
        const std::size_t kk = k_arg(k);
        const int t = threads_arg(threads);
        nmhash::knn_result r;
        {
          py::gil_scoped_release release;
          r = nmhash::hamming_knn(q, db, kk, nmhash::threads{t});
        }
        return knn_arrays(r);
      },
      py::arg("queries"), py::arg("database"), py::arg("k"), py::arg("bits") = 0, py::arg("threads") = 0,
      "The k nearest database codes of every query: (distances int32 (nq, k), indices int64 (nq, k)), ordered by "
      "(distance, index); -1 / INT32_MAX pad past the database size (FAISS's order and padding). k in [1, 2^32 - "
      "1], threads in [0, 1024] (0: all cores).");

  m.def(
      "evaluate",
      [](const py::object& queries, const py::object& database, const py::object& query_labels,
         const py::object& database_labels, std::int64_t bits, const std::vector<std::int64_t>& map_at,
         const std::vector<std::int64_t>& precision_at, std::int64_t radius, bool index_order, bool per_query,
         std::int64_t threads) {
        const packed_codes q = to_codes(queries, bits, "evaluate queries");
        const packed_codes db = to_codes(database, bits, "evaluate database");
        const nmhash::labels ql = to_labels(query_labels, q.size(), "evaluate query_labels");
        const nmhash::labels dl = to_labels(database_labels, db.size(), "evaluate database_labels");
        nmhash::evaluation_options opt;
        opt.map_at = cutoffs("map_at", map_at);
        opt.precision_at = cutoffs("precision_at", precision_at);
        opt.radius = static_cast<int>(bounded("radius", radius, 0, 65536));
        opt.index_order = index_order;
        opt.per_query = per_query;
        opt.threads.count = threads_arg(threads);
        nmhash::evaluation ev;
        {
          py::gil_scoped_release release;
          ev = nmhash::evaluate(q, db, ql, dl, opt);
        }
        py::dict out;
        out["queries"] = ev.queries;
        out["database"] = ev.database;
        out["bits"] = ev.bits;
        out["map"] = ev.map.tie_aware;
        if (index_order) out["map_index_order"] = ev.map.index_order;
        py::dict mk, mk_io, pn, pn_io;
        for (std::size_t a = 0; a < ev.map_at_k.size(); ++a) {
          mk[py::int_(ev.map_at_k[a])] = ev.map_at[a].tie_aware;
          mk_io[py::int_(ev.map_at_k[a])] = ev.map_at[a].index_order;
        }
        for (std::size_t a = 0; a < ev.precision_at_n.size(); ++a) {
          pn[py::int_(ev.precision_at_n[a])] = ev.precision_at[a].tie_aware;
          pn_io[py::int_(ev.precision_at_n[a])] = ev.precision_at[a].index_order;
        }
        out["map_at"] = mk;
        out["precision_at"] = pn;
        if (index_order) {
          out["map_at_index_order"] = mk_io;
          out["precision_at_index_order"] = pn_io;
        }
        out["radius"] = ev.radius;
        out["precision_within_radius"] = ev.within_radius.precision;
        out["recall_within_radius"] = ev.within_radius.recall;
        py::array_t<double> curve({static_cast<py::ssize_t>(ev.pr_curve.size()), py::ssize_t{2}});
        for (std::size_t r = 0; r < ev.pr_curve.size(); ++r) {
          curve.mutable_at(r, 0) = ev.pr_curve[r].precision;
          curve.mutable_at(r, 1) = ev.pr_curve[r].recall;
        }
        out["pr_curve"] = curve;
        if (per_query) {
          out["ap"] = vector_array(ev.ap_tie_aware);
          if (index_order) out["ap_index_order"] = vector_array(ev.ap_index_order);
        }
        return out;
      },
      py::arg("queries"), py::arg("database"), py::arg("query_labels"), py::arg("database_labels"),
      py::arg("bits") = 0, py::arg("map_at") = std::vector<std::int64_t>{},
      py::arg("precision_at") = default_precision_at(),
      py::arg("radius") = 2, py::arg("index_order") = true, py::arg("per_query") = false, py::arg("threads") = 0,
      evaluate_doc);

  py::class_<nmhash::binary_index>(m, "Index",
                                   "Binary codes with ids, searched exactly by Hamming distance (nmhash::binary_index). "
                                   "Concurrent searches are safe while no thread writes. Pickles (codes and ids).")
      .def(py::init([](std::int64_t bits) {
             return nmhash::binary_index(static_cast<std::size_t>(
                 bounded("Index bits", bits, 1, static_cast<std::int64_t>(nmhash::max_code_bits))));
           }),
           py::arg("bits"))
      .def_property_readonly("bits", &nmhash::binary_index::bits)
      .def_property_readonly("code_size", &nmhash::binary_index::code_size)
      .def_property_readonly("ntotal", &nmhash::binary_index::size)
      .def_property_readonly("has_ids", &nmhash::binary_index::has_ids)
      .def("__len__", &nmhash::binary_index::size)
      .def(
          "add",
          [](nmhash::binary_index& idx, const py::object& codes) {
            idx.add(index_codes(idx, codes, "Index.add codes"));
          },
          py::arg("codes"), "Appends codes numbered by position.")
      .def(
          "add_with_ids",
          [](nmhash::binary_index& idx, const py::object& codes, const py::object& ids) {
            const packed_codes c = index_codes(idx, codes, "Index.add_with_ids codes");
            idx.add_with_ids(c, to_ids(ids, c.size(), "Index.add_with_ids ids"));
          },
          py::arg("codes"), py::arg("ids"), "Appends codes with int64 ids of their own (unsigned ids above 2^63 - 1 are refused).")
      .def(
          "remove_ids",
          [](nmhash::binary_index& idx, const py::object& ids) {
            return idx.remove_ids(to_ids(ids, static_cast<std::size_t>(-1), "Index.remove_ids ids"));
          },
          py::arg("ids"), "Removes every code whose id is listed; returns how many were removed.")
      .def(
          "search",
          [](const nmhash::binary_index& idx, const py::object& queries, std::int64_t k, const py::object& allow_ids,
             const py::object& deny_ids, std::int64_t threads) {
            const packed_codes q = index_codes(idx, queries, "Index.search queries");
            const std::size_t kk = k_arg(k);
            const auto opt = scan_with(threads);
            const nmhash::search_filter filter = filter_of(allow_ids, deny_ids, "Index.search");
            nmhash::knn_result r;
            {
              py::gil_scoped_release release;
              r = idx.search(q, kk, filter, opt);
            }
            return knn_arrays(r);
          },
          py::arg("queries"), py::arg("k"), py::arg("allow_ids") = py::none(),
          py::arg("deny_ids") = py::none(), py::arg("threads") = 0,
          "(distances int32 (nq, k), ids int64 (nq, k)) of the k nearest codes, FAISS's order and padding. k in [1, "
          "2^32 - 1], threads in [0, 1024]. allow_ids: search only the codes with these ids; deny_ids: never return "
          "these (ids not in the index are ignored); the result is exactly the unfiltered search over the admitted "
          "codes, padded where fewer than k are admitted.")
      .def(
          "range_search",
          [](const nmhash::binary_index& idx, const py::object& queries, std::int64_t radius,
             const py::object& allow_ids, const py::object& deny_ids, std::int64_t threads) {
            const packed_codes q = index_codes(idx, queries, "Index.range_search queries");
            const int rad = static_cast<int>(bounded("radius", radius, 0, 65536));
            const auto opt = scan_with(threads);
            const nmhash::search_filter filter = filter_of(allow_ids, deny_ids, "Index.range_search");
            nmhash::range_result r;
            {
              py::gil_scoped_release release;
              r = idx.range_search(q, rad, filter, opt);
            }
            std::vector<std::int64_t> lims(r.lims.begin(), r.lims.end());
            return py::make_tuple(vector_array(lims), vector_array(r.distances), vector_array(r.labels));
          },
          py::arg("queries"), py::arg("radius"), py::arg("allow_ids") = py::none(),
          py::arg("deny_ids") = py::none(), py::arg("threads") = 0,
          "(lims int64 (nq + 1,), distances int32, ids int64): every code at distance < radius, query q's in "
          "[lims[q], lims[q+1]), FAISS's range_search result. radius in [0, 65536]; allow_ids and deny_ids as in "
          "search.")
      .def(
          "codes", [](const nmhash::binary_index& idx) { return to_bytes(idx.reconstruct_all()); },
          "A copy of the stored codes, uint8 (ntotal, code_size).")
      .def("ids", &index_ids, "The id of every stored code (its position when the index numbers codes by position).")
      .def(
          "save", [](const nmhash::binary_index& idx, const std::string& path) { nmhash::io::save_index(idx, path); },
          py::arg("path"), "Writes the nmhash index file (atomic: the file is whole or absent).")
      .def(
          "write_faiss",
          [](const nmhash::binary_index& idx, const std::string& path) { nmhash::io::write_faiss_index(idx, path); },
          py::arg("path"), "Writes a FAISS IndexBinaryFlat / IndexBinaryIDMap file (faiss.read_index_binary).")
      .def(py::pickle(
          [](const nmhash::binary_index& idx) {
            return py::make_tuple(idx.bits(), to_bytes(idx.reconstruct_all()),
                                  idx.has_ids() ? py::object(index_ids(idx)) : py::object(py::none()));
          },
          [](const py::tuple& t) {
            if (t.size() != 3) refuse("Index.__setstate__: expected (bits, codes, ids), found " + std::to_string(t.size()) + " items");
            const auto bits = t[0].cast<std::int64_t>();
            nmhash::binary_index idx(static_cast<std::size_t>(
                bounded("Index.__setstate__ bits", bits, 1, static_cast<std::int64_t>(nmhash::max_code_bits))));
            const packed_codes c = to_codes(t[1], bits, "Index.__setstate__ codes");
            if (t[2].is_none())
              idx.add(c);
            else
              idx.add_with_ids(c, to_ids(t[2], c.size(), "Index.__setstate__ ids"));
            return idx;
          }));

  m.def(
      "read_index", [](const std::string& path) { return nmhash::io::open_index(path); }, py::arg("path"),
      "Reads an nmhash index file or a FAISS IndexBinaryFlat / IndexBinaryIDMap file.");
}
