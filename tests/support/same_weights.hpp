// Whether two networks of the same architecture hold the same weights bit for bit: the check behind
// every "the weights do not depend on the number of threads" test.
#pragma once

#include <gtest/gtest.h>

#include <cstring>

#include "digits/layer.hpp"
#include "digits/network.hpp"

namespace digits::support {

inline void expect_same_weights(const Network& a, const Network& b) {
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    const ConstParameters p = parameters(a.layers[i]), q = parameters(b.layers[i]);
    if (!p.W) continue;  // pooling and flatten learn nothing
    EXPECT_EQ(std::memcmp(p.W->data(), q.W->data(), sizeof(float) * static_cast<std::size_t>(p.W->size())), 0) << "layer " << i;
    EXPECT_EQ(std::memcmp(p.b->data(), q.b->data(), sizeof(float) * static_cast<std::size_t>(p.b->size())), 0) << "layer " << i;
    if (const auto* bn = std::get_if<BatchNormLayer>(&a.layers[i])) {  // and batch norm's running statistics
      const auto& other = std::get<BatchNormLayer>(b.layers[i]);
      const auto bytes = sizeof(float) * static_cast<std::size_t>(bn->channels());
      EXPECT_EQ(std::memcmp(bn->running_mean.data(), other.running_mean.data(), bytes), 0) << "layer " << i;
      EXPECT_EQ(std::memcmp(bn->running_var.data(), other.running_var.data(), bytes), 0) << "layer " << i;
      EXPECT_EQ(bn->batches_tracked, other.batches_tracked) << "layer " << i;
    }
  }
}

// Trains with train(1), then train(2) and train(3), and expects the same weights each time.
template <typename Train>
void expect_same_weights_whatever_the_threads(const Train& train) {
  const Network one = train(1);
  for (int threads : {2, 3}) {
    const Network many = train(threads);
    EXPECT_EQ(many.threads(), threads);
    expect_same_weights(one, many);
  }
}

}  // namespace digits::support
