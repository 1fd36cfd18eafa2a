// What batch_norm_forward.wgsl writes (appended to it): the normalised value, or with `relu`
// its ReLU.
override relu = false;

fn epilogue(v: f32, o: u32) -> f32 { return select(v, max(v, 0.0), relu); }
