"""One package per method (``unires``, ``babyai``, ``easysr``, ``pccnn``, ``aid``), each
laid out the same way where it applies: ``network`` (or UniRes' solver), ``inference``
(or ``fit``/``recon``), ``data``, ``train``, and the public API in its ``__init__``.
Shared by the methods: the weights registry (:mod:`.weights`), windowed inference
(:mod:`.sliding_window`) and subject splits (:mod:`.subject_split`)."""
