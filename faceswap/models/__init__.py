"""Model files and inference sessions: the registry (what each file is and where it comes from), the store
(download once, verify, find), the signatures that tell files apart, and the onnxruntime session factory."""
