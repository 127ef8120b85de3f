"""MSBG hearing-loss simulator: a faithful, vectorised re-implementation of pyclarity 0.9.0's.

The Moore-Stone-Baer-Glasberg model simulates an impaired ear in five stages, one module each:

1. :mod:`msbg.levels` -- rescale so that the active-speech RMS equals the overall RMS;
   0 dBFS = ``equiv_0db_spl + ahr`` dB SPL.
2. :mod:`msbg.ear_filters` -- outer/middle-ear FIR (source to cochlea).
3. :mod:`msbg.smearing` -- spectral smearing (broadened auditory filters; Baer & Moore 1993).
4. :mod:`msbg.gammatone` + :mod:`msbg.recruitment` -- gammatone filterbank, envelope expansion
   (loudness recruitment, threshold elevation; Moore & Glasberg 1993), recombination.
5. :mod:`msbg.ear_filters` -- inverse outer/middle-ear FIR and an 18 kHz low-pass.

Usage::

    from msbg import Ear, Audiogram, Listener, listen
    ear = Ear(src_pos="ff", sample_rate=44100, equiv_0db_spl=100, ahr=20)
    ear.set_audiogram(Audiogram(levels=[...], frequencies=[250, 500, ..., 8000]))
    out = ear.process(mono)[0]          # a list, one 1-D float64 array per channel (pyclarity)
    binaural = listen(ear, signal_nx2, left, right)    # (M, 2), one audiogram per ear

The API of ``Ear``, ``Audiogram`` and ``Listener`` is pyclarity 0.9.0's. msbg imports nothing
from the E032 recipe; :mod:`msbg.parallel` (process pool) and :mod:`msbg.files` (WAV/JSON) serve
its batch runner.

Glossary (ours -> pyclarity / MATLAB)
-------------------------------------
=====================================  ==========================================================
ours                                   pyclarity 0.9.0 (MATLAB)
=====================================  ==========================================================
``Ear.full_scale_db_spl``              ``equiv_0db_spl + ahr`` (``equiv0dBSPL + ahr``)
``levels.active_rms``                  ``measure_rms`` / ``generate_key_percent`` (fixed threshold)
``levels.normalise_level``             rescaling block of ``Ear.process``
``levels.level_gain``                  its gain (``change_db``), one for all channels
``levels.calibration_signals``         ``Ear.make_calibration_signal``
``levels.speech_shaped_noise``         ``gen_eh2008_speech_noise``
``ear_filters.fir2_design``            ``msbg_utils.firwin2`` / ``fir2`` (MATLAB ``fir2``)
``ear_filters.source_correction_db``   ``Ear.get_src_correction``
``ear_filters.ear_filter_taps``        filter designed in ``Ear.src_to_cochlea_filt``
``ear_filters.lowpass_taps``           ``lpf44d1`` in ``Ear.process``
``ear_filters.output_taps``            backward ``src_to_cochlea_filt`` + ``lpf44d1`` in one FIR
``smearing.auditory_filter_matrix``    ``audfilt``
``smearing.smearing_matrix``           ``make_smear_mat3`` (``f_smear``)
``smearing.smear``                     ``smear3`` / ``Smearer.smear``
``smearing.SMEAR_BROADENING``          ``HL_PARAMS[...]["smear_params"]`` (``rl``, ``ru``)
``gammatone.Filterbank``               ``GTFParamDict`` / ``read_gtf_file``
``Filterbank.centre_hz``               ``GTn_CentFrq``
``Filterbank.erb_hz``                  ``ERBn_CentFrq`` (an ERB bandwidth, despite the name)
``Filterbank.sos``                     ``GTn_nums``, ``GTn_denoms`` x ``NGAMMA``
``Filterbank.delays``                  ``GTnDelays``
``Filterbank.first_highpass``          ``Start2PoleHP - 1``
``Filterbank.highpass_sos``            ``HP_nums``, ``HP_denoms``
``Filterbank.recombination_db``        ``Recombination_dB``
``gammatone.gammatone_filter``         ``gammatone_filterbank``
``recruitment.expansion_ratios``       ``compute_recruitment_parameters`` (``cf_expansion``)
``recruitment.envelope``               ``compute_envelope``
``recruitment.recruit``                ``recruitment``
``recruit_and_sum_time_major``         ``recruitment`` + channel sum in ``Cochlea.simulate``
``smear(..., framing="pyclarity")``    ``smear3`` buffer behaviour ("clean": without its quirks)
``_kernels``                           (none: compiled filters, all channels at once)
``tables.CATCH_UP_LEVEL_DB_SPL``       ``catch_up_level`` (``eq_loud_db_catch_up``)
``ear.Cochlea``                        ``Cochlea``
``Audiogram.severity``                 ``Audiogram.severity``
``Listener.id`` (also ``.name``)       ``Listener.id``
``listen``                             ``run_msbg_simulation``'s per-signal body (E032 recipe)
``sample_rate``, ``*_hz``, ``*_db``    ``fs``/``sample_rate``, ``Hz``, ``dB`` suffixes
=====================================  ==========================================================
"""

from msbg.audiogram import Audiogram, Listener
from msbg.ear import Ear, listen

__all__ = ["Audiogram", "Ear", "Listener", "listen"]
