// Shapes as the course notes speak of them (H x W x C), and overflow-checked 64-bit size math.
#pragma once
#include <cstdint>
#include <string>

namespace lenz {

struct Shape {
    int64_t h = 0;
    int64_t w = 0;
    int64_t c = 0;

    int64_t elements() const;  // throws ShapeError on overflow
    std::string str() const;   // "200x300x3"
    bool operator==(const Shape&) const = default;
};

// Checked arithmetic: throws ShapeError naming `what` when the result leaves int64.
int64_t checked_mul(int64_t a, int64_t b, const char* what = "size");
int64_t checked_add(int64_t a, int64_t b, const char* what = "size");

// "12,613,600"
std::string with_commas(int64_t v);
// "1 layer", "3 layers", "60,000 images": the count with commas and the noun in the right number.
std::string count_of(int64_t n, const std::string& noun);
// "12.6 MB" (decimal megabytes, as the course notes use), "569.2 MB", "1.21 GB"
std::string human_bytes(int64_t bytes);

}  // namespace lenz
