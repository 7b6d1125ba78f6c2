"""One object store for everything edgepick keeps on `EDGEPICK_ORIGIN`: rendered variants
(`content/`), the manifest copy (`manifest/`), the event log (`events/`) and the model
registry (`models/`). A folder or S3, side by side behind one interface (store.py); the
packages that use it (content_variants, decision_worker) add their own rules on top, such as
which keys may be written. The serving path never imports it."""
