// A retrieval engine's view of nmhash: pack codes, rank, score.
#include <cstdio>

#include <nmhash/nmhash.hpp>

int main() {
  const float outputs[4][3] = {{1, -1, 1}, {1, -1, -1}, {-1, 1, -1}, {1, 1, 1}};
  const auto codes = nmhash::pack_signs(&outputs[0][0], 4, 3);
  const auto knn = nmhash::hamming_knn(codes, codes, 2);
  const auto labels = nmhash::labels::single({0, 0, 1, 0});
  const auto map = nmhash::mean_average_precision(codes, codes, labels, labels);
  // Each code's nearest neighbour is itself, and code 1's second is code 0.
  if (knn.index(0, 0) != 0 || knn.index(1, 1) != 0 || knn.distance(1, 1) != 1) return 1;
  if (!(map.tie_aware > 0.5 && map.tie_aware <= 1.0)) return 2;
  std::printf("consumer ok: MAP %.4f\n", map.tie_aware);
  return 0;
}
