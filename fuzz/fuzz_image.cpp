// Fuzzes read_image_info and read_image (PNG, JPEG, BMP, TIFF and WebP, chosen by content: the seeds
// hold each) and fit_image on whatever decodes: to grey and to RGB, shrinking and enlarging, so
// channel conversion, cropping and resampling all see odd sizes. The header-only reader must agree
// with the decoder wherever both succeed. read_mask reads the same bytes as a segmentation mask, and
// fit_mask may only ever give values the mask holds (nearest neighbour never invents a class).
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
    try {
        const lenz::Image mask = lenz::read_mask(path);
        if (mask.channels != 1 || mask.pixels.size() != static_cast<size_t>(mask.height * mask.width))
            __builtin_trap();
        bool held[256] = {};
        for (const uint8_t v : mask.pixels) held[v] = true;
        for (auto [h, w] : {std::tuple{28, 28}, std::tuple{5, 17}}) {
            const lenz::Image fitted = lenz::fit_mask(mask, h, w);
            if (fitted.pixels.size() != static_cast<size_t>(h * w)) __builtin_trap();
            for (const uint8_t v : fitted.pixels)
                if (!held[v]) __builtin_trap();
        }
    } catch (const lenz::Error&) {
    }
    return 0;
}
