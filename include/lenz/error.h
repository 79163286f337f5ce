// Typed errors: one line saying what, where, expected vs. got. The CLI prints e.what() and exits 1.
#pragma once
#include <stdexcept>
#include <string>

namespace lenz {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct ParseError : Error {
    using Error::Error;
};
struct ShapeError : Error {
    using Error::Error;
};
struct FormatError : Error {
    using Error::Error;
};
struct IoError : Error {
    using Error::Error;
};

}  // namespace lenz
