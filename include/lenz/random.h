// A small, fully specified random generator (xoshiro256**), so that the same seed gives the same
// weights, shuffles and dropout masks on every platform and standard library.
#pragma once
#include <cmath>
#include <cstdint>

namespace lenz {

class Rng {
  public:
    explicit Rng(uint64_t seed) {
        uint64_t z = seed;
        for (auto& s : state_) s = splitmix(z);
    }
    // Independent stream for (seed, a, b): e.g. the shuffle of epoch a, the dropout of step b.
    static Rng derive(uint64_t seed, uint64_t a, uint64_t b = 0) {
        uint64_t z = seed ^ (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xD1B54A32D192ED03ull);
        return Rng(splitmix(z));
    }
    uint64_t next() {
        uint64_t result = rotl(state_[1] * 5, 7) * 9;
        uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }
    // Uniform in [0, 1) with 24 random bits, exactly representable as float.
    float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }
    float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
    // Uniform integer in [0, n).
    uint64_t below(uint64_t n) {
        return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
    }
    // Standard normal by Box-Muller (in double, so results do not depend on float contraction).
    float normal() {
        double u1 = (static_cast<double>(next() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
        double u2 = static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);
        return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }

  private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static uint64_t splitmix(uint64_t& z) {
        uint64_t r = (z += 0x9E3779B97F4A7C15ull);
        r = (r ^ (r >> 30)) * 0xBF58476D1CE4E5B9ull;
        r = (r ^ (r >> 27)) * 0x94D049BB133111EBull;
        return r ^ (r >> 31);
    }
    uint64_t state_[4];
};

}  // namespace lenz
