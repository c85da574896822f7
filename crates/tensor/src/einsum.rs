//! Two-operand `einsum` as permute + reshape + batched matmul.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A parsed operand label: a letter, or the `i`-th axis of an ellipsis counted from its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Letter(char),
    Ellipsis(usize),
}

fn bad(equation: &str, problem: impl Into<String>) -> Error {
    Error::Einsum { equation: equation.to_string(), problem: problem.into() }
}

/// Splits one operand spec into labels for a tensor of rank `rank` (`None`: the output, whose
/// ellipsis takes `ell_out` axes).
fn labels(equation: &str, spec: &str, rank: Option<usize>, ell_out: usize) -> Result<Vec<Label>> {
    let (head, tail, has_ell) = match spec.find("...") {
        Some(i) => (&spec[..i], &spec[i + 3..], true),
        None => (spec, "", false),
    };
    let letters = |s: &str| -> Result<Vec<Label>> {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    Ok(Label::Letter(c))
                } else {
                    Err(bad(equation, format!("`{c}` is not a letter (only a-z, A-Z and one `...` per operand)")))
                }
            })
            .collect()
    };
    let (h, t) = (letters(head)?, letters(tail)?);
    let n_ell = if has_ell {
        match rank {
            Some(r) => r
                .checked_sub(h.len() + t.len())
                .ok_or_else(|| bad(equation, format!("operand `{spec}` names more axes than its rank {r}")))?,
            None => ell_out,
        }
    } else {
        if let Some(r) = rank
            && r != h.len()
        {
            return Err(bad(equation, format!("operand `{spec}` names {} axes but the tensor has rank {r}", h.len())));
        }
        0
    };
    let mut out = h;
    out.extend((0..n_ell).rev().map(Label::Ellipsis));
    out.extend(t);
    Ok(out)
}

/// `einsum(equation, a, b)` for two operands, e.g. `"abc,cd->abd"` or `"...b,bc->...c"`.
///
/// Labels in both inputs and the output are batch axes, labels in both inputs only are summed
/// (contracted), labels in one input and the output are kept, labels in one input only are summed
/// first. The output must be given (`->`); repeated labels within one operand (diagonals) are
/// refused. Ellipsis axes are aligned from the right and must have equal sizes.
pub fn einsum(equation: &str, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (ins, out) = eq.split_once("->").ok_or_else(|| bad(equation, "has no `->` output"))?;
    let (sa, sb) = ins.split_once(',').ok_or_else(|| bad(equation, "needs exactly two operands `x,y->z`"))?;
    if sb.contains(',') {
        return Err(bad(equation, "needs exactly two operands `x,y->z`"));
    }
    let la = labels(equation, sa, Some(a.rank()), 0)?;
    let lb = labels(equation, sb, Some(b.rank()), 0)?;
    let ell = |l: &[Label]| l.iter().filter(|x| matches!(x, Label::Ellipsis(_))).count();
    let lo = labels(equation, out, None, ell(&la).max(ell(&lb)))?;
    for (spec, l) in [(sa, &la), (sb, &lb), (out, &lo)] {
        for (i, x) in l.iter().enumerate() {
            if l.iter().skip(i + 1).any(|y| y == x) {
                return Err(bad(equation, format!("operand `{spec}` repeats a label; diagonals are not supported")));
            }
        }
    }
    // Sizes per label.
    let mut sizes: Vec<(Label, usize)> = Vec::new();
    for (l, t) in [(&la, a), (&lb, b)] {
        for (x, &d) in l.iter().zip(t.shape()) {
            match sizes.iter().find(|(y, _)| y == x) {
                Some(&(_, e)) if e != d => {
                    return Err(bad(
                        equation,
                        format!(
                            "label {x:?} has size {e} in one operand and {d} in another ({:?}, {:?})",
                            a.shape(),
                            b.shape()
                        ),
                    ));
                }
                Some(_) => {}
                None => sizes.push((*x, d)),
            }
        }
    }
    let size = |x: &Label| sizes.iter().find(|(y, _)| y == x).map(|&(_, d)| d).unwrap_or(1);
    for x in &lo {
        if !la.contains(x) && !lb.contains(x) {
            return Err(bad(equation, format!("output label {x:?} is in neither input")));
        }
    }
    // Sum out labels only one operand has and the output lacks.
    let reduce = |t: &Tensor, l: &[Label], other: &[Label]| -> Result<(Tensor, Vec<Label>)> {
        let axes: Vec<isize> = l
            .iter()
            .enumerate()
            .filter(|(_, x)| !other.contains(x) && !lo.contains(x))
            .map(|(i, _)| i as isize)
            .collect();
        if axes.is_empty() {
            return Ok((t.clone(), l.to_vec()));
        }
        let kept = l.iter().enumerate().filter(|(i, _)| !axes.contains(&(*i as isize))).map(|(_, x)| *x).collect();
        Ok((t.sum(Some(&axes), false)?, kept))
    };
    let (ta, la) = reduce(a, &la, &lb)?;
    let (tb, lb) = reduce(b, &lb, &la)?;
    let batch: Vec<Label> = lo.iter().filter(|x| la.contains(x) && lb.contains(x)).copied().collect();
    let contract: Vec<Label> = la.iter().filter(|x| lb.contains(x) && !lo.contains(x)).copied().collect();
    let afree: Vec<Label> = lo.iter().filter(|x| la.contains(x) && !lb.contains(x)).copied().collect();
    let bfree: Vec<Label> = lo.iter().filter(|x| lb.contains(x) && !la.contains(x)).copied().collect();
    let pos = |l: &[Label], x: &Label| l.iter().position(|y| y == x).unwrap_or(0);
    // Each group's size divides an input's element count, so these products cannot overflow.
    let prod = |l: &[Label]| l.iter().map(size).product::<usize>();
    let perm_a: Vec<usize> = batch.iter().chain(&afree).chain(&contract).map(|x| pos(&la, x)).collect();
    let perm_b: Vec<usize> = batch.iter().chain(&contract).chain(&bfree).map(|x| pos(&lb, x)).collect();
    let (nb, m, k, n) = (prod(&batch), prod(&afree), prod(&contract), prod(&bfree));
    // The output element count must not overflow (an outer product can be far larger than its inputs).
    crate::shape::numel(&[nb, m, n])?;
    let ma = ta.permute(&perm_a)?.reshape(&[nb, m, k])?;
    let mb = tb.permute(&perm_b)?.reshape(&[nb, k, n])?;
    let y = ma.matmul(&mb)?;
    let order: Vec<Label> = batch.iter().chain(&afree).chain(&bfree).copied().collect();
    let shape: Vec<usize> = order.iter().map(size).collect();
    let y = y.reshape(&shape)?;
    let perm: Vec<usize> = lo.iter().map(|x| pos(&order, x)).collect();
    y.permute(&perm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|i| (i as f32) * 0.5 - 1.0).collect()).unwrap()
    }

    #[test]
    fn matches_matmul_and_batch() {
        let (a, b) = (t(&[2, 3, 4]), t(&[4, 5]));
        let y = einsum("abc,cd->abd", &a, &b).unwrap();
        assert!(y.all_close(&a.matmul(&b).unwrap(), 1e-6, 1e-6));
        let y = einsum("...c,cd->...d", &a, &b).unwrap();
        assert!(y.all_close(&a.matmul(&b).unwrap(), 1e-6, 1e-6));
        let c = t(&[2, 5, 4]);
        let y = einsum("bqd,bkd->bqk", &a, &c).unwrap();
        assert!(y.all_close(&a.matmul_nt(&c).unwrap(), 1e-6, 1e-6));
        // transposed output
        let y = einsum("bqd,bkd->bkq", &a, &c).unwrap();
        assert!(y.all_close(&a.matmul_nt(&c).unwrap().permute(&[0, 2, 1]).unwrap(), 1e-6, 1e-6));
    }

    #[test]
    fn sums_unmatched_labels_and_refuses_bad_equations() {
        let (a, b) = (t(&[2, 3]), t(&[3]));
        let y = einsum("ij,j->i", &a, &b).unwrap();
        let want = a.mul(&b).unwrap().sum(Some(&[1]), false).unwrap();
        assert!(y.all_close(&want, 1e-6, 1e-6));
        let y = einsum("ij,k->i", &a, &b).unwrap();
        let want = a.sum(Some(&[1]), false).unwrap().scale(b.sum(None, false).unwrap().item().unwrap());
        assert!(y.all_close(&want, 1e-6, 1e-6));
        let e = einsum("ij,jk", &a, &b).unwrap_err().to_string();
        assert!(e.contains("->"), "{e}");
        let e = einsum("ii,i->i", &t(&[3, 3]), &b).unwrap_err().to_string();
        assert!(e.contains("diagonal"), "{e}");
        let e = einsum("ij,jk->iz", &a, &t(&[3, 2])).unwrap_err().to_string();
        assert!(e.contains("neither input"), "{e}");
        assert!(einsum("ij,jk->ik", &a, &t(&[4, 2])).is_err());
    }
}
