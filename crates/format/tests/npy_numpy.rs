//! `.npy` / `.npz` against numpy itself (the oracle venv's numpy): every dtype, byte order,
//! Fortran order, format versions 1.0-3.0 and `savez_compressed` read here equal what numpy
//! wrote; what [`write_npz`] writes loads in numpy with the same values. Skipped without the oracle.

use std::path::Path;
use std::process::Command;

use strata_format::limits::Limits;
use strata_format::npy::{ArrayFile, NpyArray, NpyDType, read_arrays, read_npz, write_npz};

fn python(script: &str, dir: &Path) -> Option<String> {
    let py = strata_testkit::oracle_python()?;
    let out = Command::new(py).arg("-c").arg(script).current_dir(dir).output().expect("run the oracle python");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn reads_every_kind_numpy_writes() {
    let dir = tempfile::tempdir().unwrap();
    // each array holds 0..n in its dtype; the reader must give back exactly those values
    let script = r#"
import numpy as np
from numpy.lib import format as F
kinds = ['<f2','<f4','<f8','|i1','<i2','<i4','<i8','|u1','<u2','<u4','<u8','>f4','>i8','>f8','>u2']
arrs = {}
for k in kinds:
    a = np.arange(12).reshape(3, 4).astype(np.dtype(k))
    arrs['a_' + k.replace('<','le_').replace('>','be_').replace('|','na_')] = a
arrs['fortran'] = np.asfortranarray(np.arange(24, dtype='<f4').reshape(2, 3, 4))
arrs['bools'] = (np.arange(6).reshape(2, 3) % 2).astype(bool)
arrs['scalar'] = np.array(5.5, dtype='<f4')
arrs['empty'] = np.zeros((0, 3), dtype='<f4')
np.savez('plain.npz', **arrs)
np.savez_compressed('compressed.npz', **arrs)
a = np.arange(6, dtype='<f4').reshape(2, 3)
for v in [(1, 0), (2, 0), (3, 0)]:
    with open('v%d.npy' % v[0], 'wb') as f:
        F.write_array(f, a, version=v)
np.save('fortran.npy', np.asfortranarray(np.arange(6, dtype='>f8').reshape(2, 3)))
"#;
    if python(script, dir.path()).is_none() {
        return;
    }
    let limits = Limits::default();
    for file in ["plain.npz", "compressed.npz"] {
        let arrays = read_npz(&dir.path().join(file), &limits).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(arrays.len(), 19, "{file}");
        for a in &arrays {
            let want: Vec<f32> = match a.name.as_str() {
                "fortran" => (0..24).map(|v| v as f32).collect(),
                "bools" => (0..6).map(|v| (v % 2) as f32).collect(),
                "scalar" => vec![5.5],
                "empty" => vec![],
                _ => (0..12).map(|v| v as f32).collect(),
            };
            assert_eq!(a.to_f32(), want, "{file}: {}", a.name);
        }
        let by = |n: &str| arrays.iter().find(|a| a.name == n).unwrap();
        assert_eq!(by("a_be_f4").dtype, NpyDType::F32);
        assert_eq!(by("a_le_f2").dtype, NpyDType::F16);
        assert_eq!(by("a_na_u1").dtype, NpyDType::U8);
        assert_eq!(by("fortran").shape, vec![2, 3, 4]);
        assert_eq!(by("scalar").shape, Vec::<usize>::new());
        assert_eq!(by("empty").shape, vec![0, 3]);
    }
    for file in ["v1.npy", "v2.npy", "v3.npy", "fortran.npy"] {
        let (kind, arrays) = read_arrays(&dir.path().join(file), &limits).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(kind, ArrayFile::Npy);
        assert_eq!(arrays[0].shape, vec![2, 3], "{file}");
        assert_eq!(arrays[0].to_f32(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "{file}");
    }
}

#[test]
fn numpy_loads_what_strata_writes() {
    let dir = tempfile::tempdir().unwrap();
    let a = NpyArray::from_f32("arr_0", &[2, 3], &[0.5, -1.0, 2.25, 0.125, 1024.0, -0.0]).unwrap();
    let b = NpyArray::from_f32("scores", &[4], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    let s = NpyArray::from_f32("s", &[], &[7.0]).unwrap();
    write_npz(&dir.path().join("out.npz"), &[a, b, s]).unwrap();
    let script = r#"
import numpy as np
z = np.load('out.npz', allow_pickle=False)
print(list(z.files))
for k in z.files:
    print(k, z[k].dtype, z[k].shape, z[k].ravel().tolist())
"#;
    let Some(out) = python(script, dir.path()) else {
        return;
    };
    assert_eq!(
        out,
        "['arr_0', 'scores', 's']\n\
         arr_0 float32 (2, 3) [0.5, -1.0, 2.25, 0.125, 1024.0, -0.0]\n\
         scores float32 (4,) [1.0, 2.0, 3.0, 4.0]\n\
         s float32 () [7.0]\n"
    );
}
