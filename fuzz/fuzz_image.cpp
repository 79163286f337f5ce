// Fuzzes read_image_info and read_image (PNG, JPEG, BMP, TIFF and WebP, chosen by content: the seeds
// hold each) and fit_image on whatever decodes: to grey and to RGB, shrinking and enlarging, so
// channel conversion, cropping and resampling all see odd sizes. The header-only reader must agree
// with the decoder wherever both succeed.
#include <cstdint>
#include <string>
#include <tuple>

#include "lenz/data.h"
#include "lenz/error.h"
#include "temp_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static lenz::fuzz::TempFile file("image");
    const std::string& path = file.write(data, size);
    lenz::ImageInfo info;
    bool header_read = false;
    try {
        info = lenz::read_image_info(path);
        header_read = true;
    } catch (const lenz::Error&) {
    }
    try {
        const lenz::Image image = lenz::read_image(path);
        if (header_read &&
            (info.height != image.height || info.width != image.width || info.channels != image.channels))
            __builtin_trap();
        if (image.pixels.size() != static_cast<size_t>(image.height * image.width * image.channels))
            __builtin_trap();
        for (auto [h, w, c] : {std::tuple{28, 28, 1}, std::tuple{5, 17, 3}, std::tuple{64, 3, 3}}) {
            const lenz::Image fitted = lenz::fit_image(image, h, w, c);
            if (fitted.height != h || fitted.width != w || fitted.channels != c ||
                fitted.pixels.size() != static_cast<size_t>(h * w * c))
                __builtin_trap();
        }
    } catch (const lenz::Error&) {
    }
    return 0;
}
