// Saving and loading a sharded_index: each rank writes and reads its own
// shard, an nmhash index file (index_io.hpp) named
// PREFIX.shard-R-of-P.nmhidx, so that shards move, back up and load
// independently. Needs nmhash::io besides nmhash::mpi.
#pragma once

#include <exception>
#include <string>
#include <utility>

#include "nmhash/index/index_io.hpp"
#include "nmhash/mpi/sharded_index.hpp"

namespace nmhash::mpi {

// The file of shard `rank` out of `ranks`.
inline std::string shard_path(const std::string& prefix, int rank, int ranks) {
  return prefix + ".shard-" + std::to_string(rank) + "-of-" + std::to_string(ranks) + ".nmhidx";
}

// Each rank saves its shard (atomically); collective, so that a failure on
// any rank is reported on every rank.
inline void save_shards(const sharded_index& idx, const std::string& prefix) {
  const communicator& c = idx.comm();
  std::string problem;
  try {
    io::save_index(idx.shard(), shard_path(prefix, c.rank(), c.size()));
  } catch (const std::exception& e) {
    problem = e.what();
  }
  agree(c, problem);
}

// Each rank loads its shard (mapped read-only with `map`); collective.
inline sharded_index load_shards(communicator comm, const std::string& prefix, bool map = false,
                                 const io::index_load_options& opt = {}) {
  std::string problem;
  binary_index shard(1);
  try {
    const std::string path = shard_path(prefix, comm.rank(), comm.size());
    shard = map ? io::map_index(path, opt) : io::load_index(path, opt);
  } catch (const std::exception& e) {
    problem = e.what();
  }
  agree(comm, problem);
  return sharded_index(std::move(comm), std::move(shard));
}

}  // namespace nmhash::mpi
