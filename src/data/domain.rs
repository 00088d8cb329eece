//! Domain shifts: per-task image transforms (rotation, colour inversion, noise, blur,
//! shift, scale), so that clients or tasks can see the same classes in different domains.

use flotilla_actors::dist::DistError as ParamError;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::{Dataset, MEAN, Pixels, STD};

/// One image transform, applied to pixel intensities in `[0, 1]`; pixels that come from
/// outside the image are background (0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Domain {
    /// Rotation about the image centre, counter-clockwise, bilinear.
    Rotate {
        /// The angle.
        degrees: f64,
    },
    /// Colour inversion: `1 - x`.
    Invert,
    /// Additive Gaussian noise, clamped to `[0, 1]`, fixed per image.
    Noise {
        /// Standard deviation, in intensity.
        std: f64,
    },
    /// Gaussian blur of standard deviation `sigma` pixels.
    Blur {
        /// Standard deviation, in pixels.
        sigma: f64,
    },
    /// Translation by whole pixels (right and down are positive).
    Shift {
        /// Pixels to the right.
        dx: i32,
        /// Pixels down.
        dy: i32,
    },
    /// Zoom about the image centre (above 1 enlarges), bilinear.
    Scale {
        /// Above 1 enlarges.
        factor: f64,
    },
}

impl Domain {
    /// Why the transform cannot be used, if it cannot (parameters follow the rules of
    /// distribution parameters).
    pub fn check(&self) -> Result<(), ParamError> {
        let positive = |value: f64, name| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(ParamError::NotPositive { name, value })
            }
        };
        match *self {
            Domain::Rotate { degrees } if !degrees.is_finite() => Err(ParamError::NotFinite {
                name: "degrees",
                value: degrees,
            }),
            Domain::Noise { std } if !(std.is_finite() && std >= 0.0) => {
                Err(ParamError::Negative {
                    name: "std",
                    value: std,
                })
            }
            Domain::Blur { sigma } => positive(sigma, "sigma"),
            Domain::Scale { factor } => positive(factor, "factor"),
            _ => Ok(()),
        }
    }

    /// Transforms one channel-interleaved `side` x `side` image of raw intensities.
    /// `rng` serves the noise.
    fn apply(&self, img: &[f32], side: usize, channels: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        match *self {
            Domain::Rotate { degrees } => {
                let (s, c) = degrees.to_radians().sin_cos();
                // Inverse map (y points down): turn each output pixel back by `degrees`.
                warp(img, side, channels, [c, -s, s, c], [0.0, 0.0])
            }
            Domain::Scale { factor } => warp(
                img,
                side,
                channels,
                [1.0 / factor, 0.0, 0.0, 1.0 / factor],
                [0.0, 0.0],
            ),
            Domain::Shift { dx, dy } => warp(
                img,
                side,
                channels,
                [1.0, 0.0, 0.0, 1.0],
                [-dx as f64, -dy as f64],
            ),
            Domain::Invert => img.iter().map(|&x| 1.0 - x).collect(),
            Domain::Noise { std } => {
                let normal = Normal::new(0.0, std).expect("std checked");
                img.iter()
                    .map(|&x| (x + normal.sample(rng) as f32).clamp(0.0, 1.0))
                    .collect()
            }
            Domain::Blur { sigma } => blur(img, side, channels, sigma),
        }
    }
}

/// Applies `domains` in order to every image of `data`; `seed` fixes the noise (each
/// image draws from a stream of its own, so the result does not depend on order).
pub(crate) fn shift_domain(data: &Dataset, domains: &[Domain], seed: u64) -> Dataset {
    let len = data.side * data.side * data.channels;
    let mut pixels = Vec::with_capacity(data.pixels.len());
    for i in 0..data.len() {
        let img = data.pixels.slice(i * len..(i + 1) * len);
        let mut raw: Vec<f32> = img.iter().map(|&v| v * STD + MEAN).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9));
        for d in domains {
            raw = d.apply(&raw, data.side, data.channels, &mut rng);
        }
        pixels.extend(raw.iter().map(|&x| (x - MEAN) / STD));
    }
    Dataset {
        pixels: Pixels::Floats(pixels),
        labels: data.labels.clone(),
        groups: data.groups.clone(),
        side: data.side,
        channels: data.channels,
        classes: data.classes,
    }
}

/// Output pixel `p` takes the bilinear sample at `m (p - centre) + centre + t`.
fn warp(img: &[f32], side: usize, channels: usize, m: [f64; 4], t: [f64; 2]) -> Vec<f32> {
    let centre = (side as f64 - 1.0) / 2.0;
    let mut out = vec![0.0; img.len()];
    for y in 0..side {
        for x in 0..side {
            let (px, py) = (x as f64 - centre, y as f64 - centre);
            let sx = m[0] * px + m[1] * py + centre + t[0];
            let sy = m[2] * px + m[3] * py + centre + t[1];
            for ch in 0..channels {
                out[(y * side + x) * channels + ch] = bilinear(img, side, channels, ch, sx, sy);
            }
        }
    }
    out
}

fn bilinear(img: &[f32], side: usize, channels: usize, ch: usize, x: f64, y: f64) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let at = |xi: f64, yi: f64| -> f64 {
        if xi < 0.0 || yi < 0.0 || xi >= side as f64 || yi >= side as f64 {
            0.0
        } else {
            img[(yi as usize * side + xi as usize) * channels + ch] as f64
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    (top * (1.0 - fy) + bottom * fy) as f32
}

/// Separable Gaussian blur; the kernel is cut at 3 sigma or at the image's side, whichever
/// is shorter (a wider kernel would only reach further into the clamped border), and
/// borders are clamped.
fn blur(img: &[f32], side: usize, channels: usize, sigma: f64) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil().min(side as f64) as i64;
    let kernel: Vec<f64> = (-radius..=radius)
        .map(|d| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let norm: f64 = kernel.iter().sum();
    let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0.0; src.len()];
        for y in 0..side as i64 {
            for x in 0..side as i64 {
                for ch in 0..channels {
                    let mut acc = 0.0;
                    for (k, w) in kernel.iter().enumerate() {
                        let d = k as i64 - radius;
                        let (sx, sy) = if horizontal { (x + d, y) } else { (x, y + d) };
                        let (sx, sy) = (
                            sx.clamp(0, side as i64 - 1) as usize,
                            sy.clamp(0, side as i64 - 1) as usize,
                        );
                        acc += w * src[(sy * side + sx) * channels + ch] as f64;
                    }
                    out[(y as usize * side + x as usize) * channels + ch] = (acc / norm) as f32;
                }
            }
        }
        out
    };
    pass(&pass(img, true), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4x4 image with one bright pixel at (x 1, y 0), in raw intensities.
    fn dot() -> Vec<f32> {
        let mut img = vec![0.0; 16];
        img[1] = 1.0;
        img
    }

    fn run(d: Domain, img: &[f32]) -> Vec<f32> {
        d.apply(img, 4, 1, &mut ChaCha8Rng::seed_from_u64(0))
    }

    #[test]
    fn geometric_transforms_move_pixels_where_expected() {
        let shifted = run(Domain::Shift { dx: 2, dy: 1 }, &dot());
        assert_eq!(shifted[4 + 3], 1.0);
        assert_eq!(shifted.iter().sum::<f32>(), 1.0);
        // A quarter turn counter-clockwise takes (1, 0) to (0, 2) about centre (1.5, 1.5).
        let turned = run(Domain::Rotate { degrees: 90.0 }, &dot());
        assert!((turned[2 * 4] - 1.0).abs() < 1e-6, "{turned:?}");
        assert!((turned.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let same = run(Domain::Scale { factor: 1.0 }, &dot());
        assert_eq!(same, dot());
    }

    #[test]
    fn photometric_transforms() {
        let inverted = run(Domain::Invert, &dot());
        assert_eq!(inverted[1], 0.0);
        assert_eq!(inverted[0], 1.0);
        let blurred = run(Domain::Blur { sigma: 1.0 }, &dot());
        assert!(blurred[1] < 1.0 && blurred[0] > 0.0 && blurred[0] == blurred[2]);
        let noisy = run(Domain::Noise { std: 0.1 }, &dot());
        assert!(noisy.iter().all(|x| (0.0..=1.0).contains(x)));
        assert_ne!(noisy, dot());
    }

    #[test]
    fn bad_parameters_are_named() {
        assert!(
            Domain::Blur { sigma: 0.0 }
                .check()
                .unwrap_err()
                .to_string()
                .contains("sigma")
        );
        assert!(
            Domain::Scale { factor: -1.0 }
                .check()
                .unwrap_err()
                .to_string()
                .contains("factor")
        );
        assert!(
            Domain::Noise { std: -0.1 }
                .check()
                .unwrap_err()
                .to_string()
                .contains("std")
        );
        assert!(Domain::Invert.check().is_ok());
    }
}
