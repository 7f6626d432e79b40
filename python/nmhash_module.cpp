// The nmhash Python module: the binary index, exact top-k and the
// retrieval metrics on numpy arrays (pybind11). See docs/python.md.
//
// Codes are accepted in two forms:
// - uint8 arrays of shape (n, ceil(K / 8)): packed bytes, bit j of a code
//   in byte j / 8 at bit j % 8 (FAISS's binary layout); K is `bits`, by
//   default 8 x the number of columns;
// - any other numeric array of shape (n, K): one value per bit, bit = 1
//   where the value is >= 0 (sgn with sgn(0) = +1, the protocol's rule for
//   network outputs and +-1 codes); bool arrays: bit = the value. Integer
//   arrays holding only 0 and 1 are refused (under the sign rule every
//   0 would become a 1): pass them as bool.
// Every nmhash::error becomes a ValueError carrying its message. Long calls
// release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "nmhash/codes/pack.hpp"
#include "nmhash/index/binary_index.hpp"
#include "nmhash/index/index_io.hpp"
#include "nmhash/retrieval/labels.hpp"
#include "nmhash/retrieval/metrics.hpp"
#include "nmhash/retrieval/topk.hpp"

namespace py = pybind11;

namespace {

using nmhash::packed_codes;

[[noreturn]] void refuse(const std::string& what) { throw nmhash::error(what); }

std::string dtype_name(const py::dtype& dt) { return dt.attr("name").cast<std::string>(); }

template <class T>
packed_codes pack_values(const py::array& a, const char* what) {
  const auto x = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!x) refuse(std::string(what) + ": cannot read the array as " + dtype_name(py::dtype::of<T>()));
  const auto n = static_cast<std::size_t>(x.shape(0)), k = static_cast<std::size_t>(x.shape(1));
  if (k < 1 || k > nmhash::max_code_bits)
    refuse(std::string(what) + ": codes of shape (n, K) need 1 <= K <= " + std::to_string(nmhash::max_code_bits) +
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
        refuse(std::string(what) +
               ": an integer array of 0 and 1 values is ambiguous under the sign rule (0 >= 0 gives bit 1); "
               "pass 0/1 bits as a bool array (x.astype(bool)) or +-1 values");
    }
    return nmhash::pack_signs(p, n, k);
  }
}

// uint8 arrays hold packed bytes (see the file comment).
bool is_packed(const py::array& a) { return a.dtype().kind() == 'u' && a.dtype().itemsize() == 1; }

// Codes from a numpy array (see the file comment). bits: 0 or the code
// length of packed uint8 codes.
packed_codes to_codes(const py::array& a, std::size_t bits, const char* what) {
  if (a.ndim() != 2)
    refuse(std::string(what) + ": codes must be a 2-D array, found " + std::to_string(a.ndim()) + " dimensions");
  const py::dtype dt = a.dtype();
  if (is_packed(a)) {
    const auto x = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>::ensure(a);
    const auto n = static_cast<std::size_t>(x.shape(0)), cols = static_cast<std::size_t>(x.shape(1));
    const std::size_t k = bits ? bits : 8 * cols;
    if (k < 1 || k > nmhash::max_code_bits)
      refuse(std::string(what) + ": code length K = " + std::to_string(k) + " is outside [1, " +
             std::to_string(nmhash::max_code_bits) + "]");
    if (nmhash::bytes_for_bits(k) != cols)
      refuse(std::string(what) + ": packed codes of K = " + std::to_string(k) + " bits have " +
             std::to_string(nmhash::bytes_for_bits(k)) + " bytes per row, the array has " + std::to_string(cols));
    nmhash::detail::check_code_padding(x.data(), n, k, what);
    return nmhash::from_packed_bytes(x.data(), n * cols, n, k, nmhash::bit_order::lsb_first);
  }
  if (bits != 0)
    refuse(std::string(what) + ": bits applies to packed uint8 codes; an array of one value per bit has K = " +
           std::to_string(a.shape(1)) + " columns");
  switch (dt.kind()) {
    case 'b': return pack_values<bool>(a, what);
    case 'f': return dt.itemsize() == 4 ? pack_values<float>(a, what) : pack_values<double>(a, what);
    case 'i':
    case 'u': return pack_values<std::int64_t>(a, what);
    default: break;
  }
  refuse(std::string(what) + ": codes must be uint8 packed bytes or numeric/bool values, found dtype " +
         dtype_name(dt));
}

// Codes for an index: packed bytes are read at the index's code length.
packed_codes index_codes(const nmhash::binary_index& idx, const py::array& a, const char* what) {
  return to_codes(a, is_packed(a) ? idx.bits() : 0, what);
}

py::array_t<std::uint8_t> to_bytes(const packed_codes& c) {
  py::array_t<std::uint8_t> out({static_cast<py::ssize_t>(c.size()),
                                 static_cast<py::ssize_t>(nmhash::bytes_for_bits(c.bits()))});
  nmhash::to_packed_bytes(c, out.mutable_data(), nmhash::bit_order::lsb_first);
  return out;
}

std::vector<std::int64_t> to_ids(const py::array& a, std::size_t expect, const char* what) {
  if (a.ndim() != 1)
    refuse(std::string(what) + ": ids must be a 1-D array, found " + std::to_string(a.ndim()) + " dimensions");
  if (a.dtype().kind() != 'i' && a.dtype().kind() != 'u')
    refuse(std::string(what) + ": ids must be integers, found dtype " + dtype_name(a.dtype()));
  const auto x = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  if (expect != static_cast<std::size_t>(-1) && static_cast<std::size_t>(x.shape(0)) != expect)
    refuse(std::string(what) + ": " + std::to_string(expect) + " codes but " + std::to_string(x.shape(0)) + " ids");
  return {x.data(), x.data() + x.shape(0)};
}

nmhash::labels to_labels(const py::array& a, std::size_t n, const char* what) {
  if (a.ndim() == 1) {
    if (a.dtype().kind() != 'i' && a.dtype().kind() != 'u')
      refuse(std::string(what) + ": class ids must be integers, found dtype " + dtype_name(a.dtype()));
    const auto x = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    std::vector<std::int32_t> ids(static_cast<std::size_t>(x.shape(0)));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (x.data()[i] < INT32_MIN || x.data()[i] > INT32_MAX)
        refuse(std::string(what) + ": class id " + std::to_string(x.data()[i]) + " at " + std::to_string(i) +
               " does not fit 32 bits");
      ids[i] = static_cast<std::int32_t>(x.data()[i]);
    }
    if (ids.size() != n)
      refuse(std::string(what) + ": " + std::to_string(ids.size()) + " labels for " + std::to_string(n) + " codes");
    return nmhash::labels::single(std::move(ids));
  }
  if (a.ndim() == 2) {
    const auto x = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
    if (static_cast<std::size_t>(x.shape(0)) != n)
      refuse(std::string(what) + ": " + std::to_string(x.shape(0)) + " label rows for " + std::to_string(n) +
             " codes");
    return nmhash::labels::multi_hot(x.data(), static_cast<std::size_t>(x.shape(0)),
                                     static_cast<std::size_t>(x.shape(1)));
  }
  refuse(std::string(what) + ": labels must be class ids (1-D) or a multi-hot matrix (2-D), found " +
         std::to_string(a.ndim()) + " dimensions");
}

py::tuple knn_arrays(const nmhash::knn_result& r) {
  const std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(r.queries), static_cast<py::ssize_t>(r.k)};
  py::array_t<std::int32_t> d(shape);
  py::array_t<std::int64_t> i(shape);
  std::memcpy(d.mutable_data(), r.distances.data(), r.distances.size() * sizeof(std::int32_t));
  std::memcpy(i.mutable_data(), r.indices.data(), r.indices.size() * sizeof(std::int64_t));
  return py::make_tuple(d, i);
}

template <class T>
py::array_t<T> vector_array(const std::vector<T>& v) {
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(T));
  return a;
}

nmhash::scan_options scan_with(int threads) {
  nmhash::scan_options o;
  o.threads.count = threads;
  return o;
}

}  // namespace

PYBIND11_MODULE(nmhash, m) {
  m.doc() =
      "nmhash: exact Hamming search and retrieval metrics on binary codes.\n\n"
      "Codes are uint8 packed bytes (n, ceil(K/8)) in FAISS's bit order, or one value per bit (n, K): "
      "bit = value >= 0 (sign rule), bool arrays as bits.";
  py::register_exception<nmhash::error>(m, "Error", PyExc_ValueError);

  m.def(
      "pack",
      [](const py::array& x) {
        const packed_codes c = to_codes(x, 0, "pack");
        return to_bytes(c);
      },
      py::arg("x"),
      "Packs (n, K) values into uint8 codes (n, ceil(K/8)): bit = value >= 0, or the value of a bool array.");

  m.def(
      "hamming_knn",
      [](const py::array& queries, const py::array& database, std::size_t k, std::size_t bits, int threads) {
        const packed_codes q = to_codes(queries, bits, "hamming_knn queries");
        const packed_codes db = to_codes(database, bits, "hamming_knn database");
        nmhash::knn_result r;
        {
          py::gil_scoped_release release;
          r = nmhash::hamming_knn(q, db, k, nmhash::threads{threads});
        }
        return knn_arrays(r);
      },
      py::arg("queries"), py::arg("database"), py::arg("k"), py::arg("bits") = 0, py::arg("threads") = 0,
      "The k nearest database codes of every query: (distances int32 (nq, k), indices int64 (nq, k)), ordered by "
      "(distance, index); -1 / INT32_MAX pad past the database size (FAISS's order and padding).");

  m.def(
      "evaluate",
      [](const py::array& queries, const py::array& database, const py::array& query_labels,
         const py::array& database_labels, std::size_t bits, std::vector<std::size_t> map_at,
         std::vector<std::size_t> precision_at, int radius, bool index_order, bool per_query, int threads) {
        const packed_codes q = to_codes(queries, bits, "evaluate queries");
        const packed_codes db = to_codes(database, bits, "evaluate database");
        const nmhash::labels ql = to_labels(query_labels, q.size(), "evaluate query_labels");
        const nmhash::labels dl = to_labels(database_labels, db.size(), "evaluate database_labels");
        nmhash::evaluation_options opt;
        opt.map_at = std::move(map_at);
        opt.precision_at = std::move(precision_at);
        opt.radius = radius;
        opt.index_order = index_order;
        opt.per_query = per_query;
        opt.threads.count = threads;
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
      py::arg("bits") = 0, py::arg("map_at") = std::vector<std::size_t>{},
      py::arg("precision_at") = nmhash::evaluation_options{}.precision_at, py::arg("radius") = 2,
      py::arg("index_order") = true, py::arg("per_query") = false, py::arg("threads") = 0,
      "Retrieval metrics of queries against a database by Hamming ranking. Labels: class ids (1-D, relevant iff "
      "equal) or multi-hot (n, C) (relevant iff a label is shared). 'map' is tie-aware (every order of equal "
      "distances averaged); 'map_index_order' breaks ties by database index, as sort-based scripts with a stable "
      "sort do. map_at=[k] gives MAP@k (DeepHash's topk MAP).");

  py::class_<nmhash::binary_index>(m, "Index",
                                   "Binary codes with ids, searched exactly by Hamming distance (nmhash::binary_index). "
                                   "Concurrent searches are safe while no thread writes.")
      .def(py::init<std::size_t>(), py::arg("bits"))
      .def_property_readonly("bits", &nmhash::binary_index::bits)
      .def_property_readonly("code_size", &nmhash::binary_index::code_size)
      .def_property_readonly("ntotal", &nmhash::binary_index::size)
      .def_property_readonly("has_ids", &nmhash::binary_index::has_ids)
      .def("__len__", &nmhash::binary_index::size)
      .def(
          "add",
          [](nmhash::binary_index& idx, const py::array& codes) {
            idx.add(index_codes(idx, codes, "Index.add"));
          },
          py::arg("codes"), "Appends codes numbered by position.")
      .def(
          "add_with_ids",
          [](nmhash::binary_index& idx, const py::array& codes, const py::array& ids) {
            const packed_codes c = index_codes(idx, codes, "Index.add_with_ids");
            idx.add_with_ids(c, to_ids(ids, c.size(), "Index.add_with_ids"));
          },
          py::arg("codes"), py::arg("ids"), "Appends codes with int64 ids of their own.")
      .def(
          "remove_ids",
          [](nmhash::binary_index& idx, const py::array& ids) {
            return idx.remove_ids(to_ids(ids, static_cast<std::size_t>(-1), "Index.remove_ids"));
          },
          py::arg("ids"), "Removes every code whose id is listed; returns how many were removed.")
      .def(
          "search",
          [](const nmhash::binary_index& idx, const py::array& queries, std::size_t k, int threads) {
            const packed_codes q = index_codes(idx, queries, "Index.search");
            nmhash::knn_result r;
            {
              py::gil_scoped_release release;
              r = idx.search(q, k, scan_with(threads));
            }
            return knn_arrays(r);
          },
          py::arg("queries"), py::arg("k"), py::arg("threads") = 0,
          "(distances, ids) of the k nearest codes, FAISS's order and padding.")
      .def(
          "range_search",
          [](const nmhash::binary_index& idx, const py::array& queries, int radius, int threads) {
            const packed_codes q = index_codes(idx, queries, "Index.range_search");
            nmhash::range_result r;
            {
              py::gil_scoped_release release;
              r = idx.range_search(q, radius, scan_with(threads));
            }
            std::vector<std::int64_t> lims(r.lims.begin(), r.lims.end());
            return py::make_tuple(vector_array(lims), vector_array(r.distances), vector_array(r.labels));
          },
          py::arg("queries"), py::arg("radius"), py::arg("threads") = 0,
          "(lims, distances, ids): every code at distance < radius, query q's in [lims[q], lims[q+1]), "
          "FAISS's range_search result.")
      .def(
          "codes", [](const nmhash::binary_index& idx) { return to_bytes(idx.reconstruct_all()); },
          "A copy of the stored codes, uint8 (ntotal, code_size).")
      .def(
          "ids",
          [](const nmhash::binary_index& idx) {
            std::vector<std::int64_t> ids(idx.size());
            for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = idx.id(i);
            return vector_array(ids);
          },
          "The id of every stored code (its position when the index numbers codes by position).")
      .def(
          "save", [](const nmhash::binary_index& idx, const std::string& path) { nmhash::io::save_index(idx, path); },
          py::arg("path"), "Writes the nmhash index file (atomic: the file is whole or absent).")
      .def(
          "write_faiss",
          [](const nmhash::binary_index& idx, const std::string& path) { nmhash::io::write_faiss_index(idx, path); },
          py::arg("path"), "Writes a FAISS IndexBinaryFlat / IndexBinaryIDMap file (faiss.read_index_binary).");

  m.def(
      "read_index", [](const std::string& path) { return nmhash::io::open_index(path); }, py::arg("path"),
      "Reads an nmhash index file or a FAISS IndexBinaryFlat / IndexBinaryIDMap file.");
}
