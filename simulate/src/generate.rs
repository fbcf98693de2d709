//! Building the district in order: residents and households ([`super::world`]) → life
//! events, benefits and marriages ([`super::life`]) → enterprises, employment and property
//! ([`super::economy`], [`super::property`]).

use super::Config;
use super::names;
use super::world::{Builder, World};

impl World {
    pub(crate) fn generate(cfg: Config, progress: &dyn Fn(&str)) -> World {
        let district = names::district(cfg.district).expect("district checked by Config::validate");
        let mut b = Builder::new(&cfg, district);
        progress("residents and households");
        b.populate();
        super::life::life_events(&mut b);
        super::life::benefits(&mut b);
        let marriages = super::life::marriages(&mut b);
        let Builder {
            people,
            households,
            streets,
            ..
        } = b;
        let mut world = World {
            district,
            streets,
            people,
            households,
            marriages,
            enterprises: Vec::new(),
            properties: Vec::new(),
            projects: Vec::new(),
            cfg,
        };
        progress("enterprises and property");
        super::economy::generate(&mut world);
        world
    }
}
