//! `other-world`: a test fixture, a valid component for a world that is
//! not wirehook's, which the host must refuse to load.

wit_bindgen::generate!({
    inline: "
        package test:other;
        world other {
            export run: func() -> u32;
        }
    ",
});

struct Other;

impl Guest for Other {
    fn run() -> u32 {
        42
    }
}

export!(Other);
