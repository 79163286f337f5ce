// Fuzzes the .lenz parser. Any input must give a Model or a lenz::Error (ParseError, ShapeError),
// never a crash, a hang or sanitizer report; a model that parses must survive to_text() and parse
// back to the same text.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "lenz/error.h"
#include "lenz/model.h"
#include "lenz/model_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    std::string printed;
    try {
        printed = lenz::parse_model(text, "fuzz.lenz").to_text();
    } catch (const lenz::Error&) {
        return 0;
    }
    try {
        if (lenz::parse_model(printed, "printed.lenz").to_text() != printed) std::abort();
    } catch (const lenz::Error&) {
        std::abort();  // to_text() wrote something parse_model refuses
    }
    return 0;
}
