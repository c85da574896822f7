//! Every name each family resolves builds an object whose serialized config parses back to an
//! equal config (the round trip a file's `compile_config` and layer configs need).

use strata_format::json::Json;
use strata_train::constraints::{CONSTRAINT_NAMES, Constraint};
use strata_train::initializers::{INITIALIZER_NAMES, Initializer};
use strata_train::losses::{LOSS_NAMES, Loss};
use strata_train::metrics::{self, METRIC_NAMES};
use strata_train::optimizers::{OPTIMIZER_NAMES, Optimizer};
use strata_train::regularizers::{REGULARIZER_NAMES, Regularizer};

#[test]
fn every_optimizer_name_round_trips() {
    for name in OPTIMIZER_NAMES {
        let o = Optimizer::get(name).unwrap();
        let back = Optimizer::deserialize(&o.serialize()).unwrap();
        assert_eq!(back.serialize(), o.serialize(), "{name}");
        assert_eq!(o.base().name, *name, "Keras's default name for {name}");
    }
}

#[test]
fn every_loss_name_round_trips() {
    for name in LOSS_NAMES {
        let l = Loss::get(name).unwrap();
        let back = Loss::deserialize(&l.serialize()).unwrap();
        assert_eq!(back, l, "{name}");
    }
}

#[test]
fn every_metric_name_round_trips() {
    for name in METRIC_NAMES {
        let m = metrics::get(name).unwrap();
        let back = metrics::deserialize(&m.serialize()).unwrap();
        assert_eq!(back.serialize(), m.serialize(), "{name}");
    }
}

#[test]
fn every_initializer_regularizer_constraint_name_round_trips() {
    for name in INITIALIZER_NAMES {
        let i = Initializer::get(name).unwrap();
        assert_eq!(Initializer::deserialize(&i.serialize()).unwrap(), i, "{name}");
    }
    for name in REGULARIZER_NAMES {
        let r = Regularizer::deserialize(&Json::from(*name)).unwrap();
        assert_eq!(Regularizer::deserialize(&r.serialize()).unwrap(), r, "{name}");
    }
    for name in CONSTRAINT_NAMES {
        let c = Constraint::deserialize(&Json::from(*name)).unwrap();
        assert_eq!(Constraint::deserialize(&c.serialize()).unwrap(), c, "{name}");
    }
}
