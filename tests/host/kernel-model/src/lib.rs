//! Host stand-ins for the kernel crate items that knet's kernel-independent data structures
//! use (`knet/slots.rs`): allocation with flags that may fail, and the error type. Only what
//! those files need, with the kernel crate's names and signatures, so that the host tests
//! compile the very files the modules build.

pub mod alloc {
    /// Allocation flags (ignored on the host: allocation does not fail here).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Flags(pub u32);
}

pub mod error {
    /// A kernel error code.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Error(pub i32);
    /// `-ENOMEM`.
    pub const ENOMEM: Error = Error(-12);
    /// The kernel crate's result type.
    pub type Result<T = (), E = Error> = core::result::Result<T, E>;
    /// An allocation failed.
    #[derive(Clone, Copy, Debug)]
    pub struct AllocError;
    impl From<AllocError> for Error {
        fn from(_: AllocError) -> Error {
            ENOMEM
        }
    }
}

pub mod prelude {
    pub use crate::alloc::Flags;
    use crate::error::AllocError;
    pub use crate::error::{Error, Result, ENOMEM};
    use core::mem::MaybeUninit;

    /// `GFP_KERNEL`.
    pub const GFP_KERNEL: Flags = Flags(0);
    /// `GFP_ATOMIC`.
    pub const GFP_ATOMIC: Flags = Flags(1);

    /// The kernel's `KBox`: a `Box` made with allocation flags.
    pub struct KBox<T>(Box<T>);

    impl<T> KBox<T> {
        pub fn new(v: T, _flags: Flags) -> Result<KBox<T>, AllocError> {
            Ok(KBox(Box::new(v)))
        }
        pub fn new_uninit(_flags: Flags) -> Result<KBox<MaybeUninit<T>>, AllocError> {
            Ok(KBox(Box::new_uninit()))
        }
        pub fn into_raw(b: KBox<T>) -> *mut T {
            Box::into_raw(b.0)
        }
        /// # Safety
        ///
        /// `p` came from `into_raw`.
        pub unsafe fn from_raw(p: *mut T) -> KBox<T> {
            // SAFETY: per the function's contract.
            KBox(unsafe { Box::from_raw(p) })
        }
        pub fn into_inner(b: KBox<T>) -> T {
            *b.0
        }
    }

    impl<T> KBox<MaybeUninit<T>> {
        /// # Safety
        ///
        /// The value is initialised.
        pub unsafe fn assume_init(self) -> KBox<T> {
            // SAFETY: per the function's contract.
            KBox(unsafe { self.0.assume_init() })
        }
    }

    impl<T> core::ops::Deref for KBox<T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.0
        }
    }

    impl<T> core::ops::DerefMut for KBox<T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.0
        }
    }

    /// The kernel's `KVec`: a `Vec` whose growth takes allocation flags and may fail.
    pub struct KVec<T>(Vec<T>);

    /// The kernel's `KVVec` (kvmalloc'd): the same on the host.
    pub type KVVec<T> = KVec<T>;

    impl<T> core::ops::Deref for KVec<T> {
        type Target = [T];
        fn deref(&self) -> &[T] {
            &self.0
        }
    }

    impl<T> KVec<T> {
        pub fn with_capacity(n: usize, _flags: Flags) -> Result<KVec<T>, AllocError> {
            Ok(KVec(Vec::with_capacity(n)))
        }
        pub fn push(&mut self, v: T, _flags: Flags) -> Result<(), AllocError> {
            self.0.push(v);
            Ok(())
        }
        pub fn into_raw_parts(self) -> (*mut T, usize, usize) {
            let mut v = core::mem::ManuallyDrop::new(self.0);
            (v.as_mut_ptr(), v.len(), v.capacity())
        }
        /// # Safety
        ///
        /// The parts came from `into_raw_parts`.
        pub unsafe fn from_raw_parts(p: *mut T, len: usize, cap: usize) -> KVec<T> {
            // SAFETY: per the function's contract.
            KVec(unsafe { Vec::from_raw_parts(p, len, cap) })
        }
    }
}
