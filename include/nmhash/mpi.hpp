// nmhash over MPI (target nmhash::mpi): sharded search and distributed
// evaluation. shard_io.hpp (saving and loading shards) also needs
// nmhash::io.
#pragma once

#include "nmhash/mpi/comm.hpp"
#include "nmhash/mpi/distribute.hpp"
#include "nmhash/mpi/metrics.hpp"
#include "nmhash/mpi/sharded_index.hpp"
