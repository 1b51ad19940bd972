//! Generation rate per core, against `serde_json` serialisation of the same
//! records as the baseline: generating a record (choosing it and writing its
//! bytes) should cost no more than serialising it, so one core can load the
//! pipeline. Run: `cargo bench -p tideline-generator --bench generate -- --warm-up-time 1 --measurement-time 3`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tideline_generator::{GenConfig, Generator, Profile};

fn bench(c: &mut Criterion) {
    for profile in Profile::ALL {
        let cfg = GenConfig {
            seed: 11,
            profile,
            entities: 10_000,
            ..GenConfig::default()
        };
        let mut group = c.benchmark_group(format!("{profile:?}").to_lowercase());
        group.throughput(Throughput::Elements(1));

        let mut generator = Generator::new(cfg.clone());
        group.bench_function("generate", |b| {
            b.iter(|| black_box(generator.next_record()));
        });

        // The same records, pre-built as values; only serialisation is timed.
        let mut source = Generator::new(cfg);
        let values: Vec<serde_json::Value> = (0..1024)
            .map(|_| serde_json::from_slice(&source.next_record().bytes).unwrap_or_default())
            .collect();
        let mut i = 0usize;
        group.bench_function("serde_json_to_vec", |b| {
            b.iter(|| {
                i = (i + 1) % values.len();
                black_box(serde_json::to_vec(&values[i]).unwrap_or_default())
            });
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
