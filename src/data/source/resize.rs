//! Bringing an image to the store's shape: channels first (luma or replication), then a
//! bilinear resize with pixel centres aligned, as `torch.nn.functional.interpolate` with
//! `align_corners=False` and no antialiasing (PIL's bilinear agrees when enlarging; when
//! shrinking it also antialiases).

/// `pixels` (`width` x `height` x `channels`, interleaved) as a `side` x `side` image of
/// `to_channels`; unchanged when the shapes already agree.
pub(super) fn to_shape(
    pixels: &[u8],
    (width, height, channels): (usize, usize, usize),
    side: usize,
    to_channels: usize,
) -> Vec<u8> {
    let converted = convert_channels(pixels, channels, to_channels);
    if width == side && height == side {
        return converted;
    }
    bilinear(&converted, (width, height), to_channels, side)
}

/// Grey from RGB by ITU-R 601 luma in PIL's fixed point (its "L" mode, to the byte), RGB
/// from grey by replication.
fn convert_channels(pixels: &[u8], from: usize, to: usize) -> Vec<u8> {
    match (from, to) {
        (a, b) if a == b => pixels.to_vec(),
        (3, 1) => pixels
            .chunks_exact(3)
            .map(|p| {
                let y = 19595 * p[0] as u32 + 38470 * p[1] as u32 + 7471 * p[2] as u32;
                ((y + 0x8000) >> 16) as u8
            })
            .collect(),
        (1, 3) => pixels.iter().flat_map(|&p| [p, p, p]).collect(),
        (a, b) => unreachable!("channels are checked to be 1 or 3: {a} -> {b}"),
    }
}

/// A bilinear resize of a `width` x `height` image to `side` x `side`.
fn bilinear(
    pixels: &[u8],
    (width, height): (usize, usize),
    channels: usize,
    side: usize,
) -> Vec<u8> {
    // Source coordinate of output index `o` along an axis of `n` input pixels, with the
    // two neighbours and the weight of the second.
    let axis = |o: usize, n: usize| -> (usize, usize, f32) {
        let x = ((o as f32 + 0.5) * n as f32 / side as f32 - 0.5).max(0.0);
        let x0 = (x.floor() as usize).min(n - 1);
        let x1 = (x0 + 1).min(n - 1);
        (x0, x1, x - x0 as f32)
    };
    let mut out = Vec::with_capacity(side * side * channels);
    for oy in 0..side {
        let (y0, y1, wy) = axis(oy, height);
        for ox in 0..side {
            let (x0, x1, wx) = axis(ox, width);
            for c in 0..channels {
                let at = |x: usize, y: usize| pixels[(y * width + x) * channels + c] as f32;
                let top = at(x0, y0) * (1.0 - wx) + at(x1, y0) * wx;
                let bottom = at(x0, y1) * (1.0 - wx) + at(x1, y1) * wx;
                let v = top * (1.0 - wy) + bottom * wy;
                out.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_shape_is_unchanged() {
        let img: Vec<u8> = (0..16).collect();
        assert_eq!(to_shape(&img, (4, 4, 1), 4, 1), img);
    }

    #[test]
    fn upscaling_by_two_interpolates_between_centres() {
        // 2x2 -> 4x4: outputs sit at input coordinates -0.25, 0.25, 0.75, 1.25.
        let out = to_shape(&[0, 100, 100, 200], (2, 2, 1), 4, 1);
        assert_eq!(&out[..4], &[0, 25, 75, 100]);
        assert_eq!(&out[12..], &[100, 125, 175, 200]);
    }

    #[test]
    fn downscaling_by_two_averages_pairs() {
        let out = to_shape(
            &[
                0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150,
            ],
            (4, 4, 1),
            2,
            1,
        );
        // Centres fall between input pixels: each output averages a 2x2 block.
        assert_eq!(out, vec![25, 45, 105, 125]);
    }

    #[test]
    fn channels_convert_by_luma_and_replication() {
        assert_eq!(
            convert_channels(&[255, 0, 0, 10, 20, 30], 3, 1),
            vec![76, 18]
        );
        // PIL's fixed point gives 156 for (0, 255, 51), where 0.587 g + 0.114 b is 155.499.
        assert_eq!(convert_channels(&[0, 255, 51], 3, 1), vec![156]);
        assert_eq!(convert_channels(&[7, 9], 1, 3), vec![7, 7, 7, 9, 9, 9]);
    }
}
