// Umbrella header of the retrieval core (target nmhash::retrieval, no
// dependency): packed codes and their bit operations (codes/), the core
// utilities (core/bits, config, device, error, parallel), the flat index
// (index/binary_index.hpp, with its filters, index/filter.hpp, and byte
// scan), and Hamming ranking, top-k, radius search, labels and the metrics
// (retrieval/). It does not include the multi-index (index/mih.hpp), file
// I/O (io/), data sets (data/), networks (nn/), losses (loss/), optimizers
// (optim/), the NMLayer and trainers (hashing/, train/), nor the CUDA
// (cuda/) and MPI (mpi.hpp) halves: include those headers where needed.
#pragma once

#include "nmhash/codes/bit_ops.hpp"
#include "nmhash/codes/pack.hpp"
#include "nmhash/codes/packed_codes.hpp"
#include "nmhash/codes/spread.hpp"
#include "nmhash/core/bits.hpp"
#include "nmhash/core/config.hpp"
#include "nmhash/core/device.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/core/parallel.hpp"
#include "nmhash/index/binary_index.hpp"
#include "nmhash/retrieval/average_precision.hpp"
#include "nmhash/retrieval/hamming.hpp"
#include "nmhash/retrieval/labels.hpp"
#include "nmhash/retrieval/loo_map.hpp"
#include "nmhash/retrieval/metrics.hpp"
#include "nmhash/retrieval/radius.hpp"
#include "nmhash/retrieval/topk.hpp"
