// Writes the JPEG seeds of fuzz/corpus/image (grey, RGB, progressive, CMYK), run once by hand:
//   gcc fuzz/make_jpeg_seeds.c -o /tmp/mk -ljpeg && (cd fuzz/corpus/image && /tmp/mk && head -c 200 rgb.jpg > truncated.jpg)
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>
static void make(const char* path, int w, int h, int comps, J_COLOR_SPACE cs, int progressive, int quality) {
    struct jpeg_compress_struct c; struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e); jpeg_create_compress(&c);
    FILE* f = fopen(path, "wb"); jpeg_stdio_dest(&c, f);
    c.image_width = w; c.image_height = h; c.input_components = comps; c.in_color_space = cs;
    jpeg_set_defaults(&c); jpeg_set_quality(&c, quality, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    unsigned char row[4 * 64];
    srand(w * 31 + h);
    while (c.next_scanline < c.image_height) {
        for (int i = 0; i < w * comps; ++i) row[i] = (unsigned char)(rand() % 256);
        JSAMPROW r = row; jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c); fclose(f); jpeg_destroy_compress(&c);
}
int main(void) {
    make("grey.jpg", 8, 8, 1, JCS_GRAYSCALE, 0, 90);
    make("rgb.jpg", 5, 3, 3, JCS_RGB, 0, 75);
    make("progressive.jpg", 17, 9, 3, JCS_RGB, 1, 60);
    make("cmyk.jpg", 4, 4, 4, JCS_CMYK, 0, 80);
    return 0;
}
