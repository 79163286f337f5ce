// What `lenz visualize` and the Python module's lenz.visualize draw for one image: the image as the
// model sees it, the class probabilities, the first layer's filters, the feature maps, and all of
// them stacked into one overview.
#include <algorithm>

#include "lenz/report.h"

namespace lenz {
namespace {

// Stacks pictures vertically on white, left-aligned, so that one picture shows everything.
Image stack(const std::vector<const Image*>& parts) {
    int64_t width = 0, height = 0;
    for (const Image* p : parts) {
        width = std::max(width, p->width);
        height += p->height;
    }
    Canvas canvas(width, height);
    int64_t y = 0;
    for (const Image* p : parts) {
        canvas.draw_image(*p, 0, y, 1);
        y += p->height;
    }
    return canvas.to_image();
}

// The image as the model sees it (resized, cropped, channels converted), enlarged to be seen.
Image input_picture(const Image& source, Shape in) {
    const Image fitted = fit_image(source, in.h, in.w, in.c);
    const std::string title =
        "input " + std::to_string(in.h) + " x " + std::to_string(in.w) + " x " + std::to_string(in.c);
    const int64_t scale = std::max<int64_t>(1, 112 / std::max(in.h, in.w));
    Canvas canvas(std::max(fitted.width * scale, text_width(title, 2)) + 20,
                  fitted.height * scale + kLineHeight * 2 + 26);
    canvas.draw_text(10, 10, title, {40, 40, 48}, 2);
    canvas.draw_image(fitted, 10, 16 + kLineHeight * 2, scale);
    return canvas.to_image();
}

}  // namespace

Visualization visualize(Model& model, const Image& source, const Normalization& norm,
                        const std::vector<std::string>& class_names) {
    ModelPictures pictures = picture_model(model, source, norm);
    Visualization v;
    v.probabilities = pictures.probabilities;
    v.pictures.push_back({"input", input_picture(source, model.input_shape())});
    v.pictures.push_back(
        {"probabilities", probability_chart(v.probabilities, class_names, "class probabilities")});
    if (pictures.filters) v.pictures.push_back({"filters", std::move(*pictures.filters)});
    for (size_t i = 0; i < pictures.feature_maps.size(); ++i)
        v.pictures.push_back({pictures.feature_map_names[i], std::move(pictures.feature_maps[i])});
    std::vector<const Image*> all;
    for (const NamedPicture& p : v.pictures) all.push_back(&p.image);
    Image overview = stack(all);
    v.pictures.push_back({"overview", std::move(overview)});
    return v;
}

}  // namespace lenz
