// Umbrella header: the CPU half of nmhash (codes, ranking, metrics, I/O).
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
#include "nmhash/retrieval/average_precision.hpp"
#include "nmhash/retrieval/hamming.hpp"
#include "nmhash/retrieval/labels.hpp"
#include "nmhash/retrieval/loo_map.hpp"
#include "nmhash/retrieval/metrics.hpp"
#include "nmhash/retrieval/radius.hpp"
#include "nmhash/retrieval/topk.hpp"
