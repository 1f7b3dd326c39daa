"""Does the test suite catch realistic bugs? Apply each known bug to a temporary copy of the code, run
only the tests that claim to cover it, and report caught or missed.

    python tools/mutation_check.py                 # every mutation
    python tools/mutation_check.py topk-keeps-k-1 met-phi-swapped   # some, by name
    python tools/mutation_check.py --list

A bug is caught when its tests fail; missed when they pass. First the tests run on the code as it is
(the control): they must pass there, or nothing is concluded. The mutations live in MUTATIONS below:
when a bug slips past the tests, add it there with the tests that should catch it, then make them
catch it. Results go to benchmarks/results/mutation_check.json (and docs/development.md quotes them).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    file: str
    old: str  # must occur exactly once in `file`
    new: str
    tests: tuple[str, ...]  # pytest node ids or files, relative to the repo


MUTATIONS = [
    Mutation("topk-keeps-k-1", "top-k keeps k-1 tokens; top-1 then keeps none", "backbone/generate.py",
             "keep &= part >= torch.topk(part, top_k)", "keep &= part > torch.topk(part, top_k)",
             ("tests/test_backbone_model.py",)),
    Mutation("truncation-drops-group-mass", "a truncated group loses the probability it cut, so truncation moves "
             "which object type comes next", "backbone/generate.py",
             "shift = torch.where(allowed, torch.log(total / torch.where(keep, weight, 0.0).sum(-1, keepdim=True)), 0.0)",
             "shift = 0.0", ("tests/test_backbone_model.py",)),
    Mutation("nucleus-off-by-a-bin", "the nucleus keeps one bin fewer than it needs", "backbone/generate.py",
             "(part > top - n_bins * NUCLEUS_BIN)", "(part > top - (n_bins - 1) * NUCLEUS_BIN)",
             ("tests/test_backbone_model.py",)),
    Mutation("prompt-features-not-prefilled", "the cached prefill reads a prompt's objects as their codes' centroids, "
             "not with the features given", "backbone/generate.py",
             "features=fed_features[:, :T0] if feedback else None)[:, -1]", "features=None)[:, -1]",
             ("tests/test_backbone_model.py::test_a_prompts_objects_are_read_with_the_features_given",)),
    Mutation("nucleus-bins-on-default-device", "the nucleus's bins of probability are made on the default device",
             "backbone/generate.py", "mass = torch.zeros(len(part), NUCLEUS_BINS, device=part.device, dtype=weight.dtype)",
             "mass = torch.zeros(len(part), NUCLEUS_BINS, dtype=weight.dtype)",
             ("tests/test_device_placement.py::test_sampling",)),
    Mutation("top-p-ignored", "sample_events draws every code from all of its type's codes, whatever top_p",
             "backbone/sampling.py", "guidance=guidance, top_p=top_p, groups=types,",
             "guidance=guidance, groups=types,", ("tests/test_sample.py",)),
    Mutation("nucleus-across-types", "sample_events truncates the whole vocabulary at once, so a rare object type "
             "(a lepton, the end) can be cut", "backbone/sampling.py", "guidance=guidance, top_p=top_p, groups=types,",
             "guidance=guidance, top_p=top_p,", ("tests/test_sample.py",)),
    Mutation("feature-logits-without-squares", "the code logits are tilted by the features only, twice, not by "
             "their squares", "backbone/model.py",
             "parts = [self.code_features, self.code_features.square()]",
             "parts = [self.code_features, self.code_features]",
             ("tests/test_backbone_model.py::test_feature_logits_tilt_each_code_by_its_features_and_their_squares",)),
    Mutation("mean-decoding-draws", "the sampler draws features where it should take the head's means",
             "backbone/generate.py", "z = mixture.mean(upper) if mean else mixture.sample(generator, upper)",
             "z = mixture.sample(generator, upper)",
             ("tests/test_backbone_model.py::test_mean_decoding_feeds_each_objects_mixture_mean_back",)),
    Mutation("mean-decoding-not-passed", "sample_events' decode='mean' draws features", "backbone/sampling.py",
             'mean=decode == "mean")', "mean=False)",
             ("tests/test_sample.py::test_mean_decoding_depends_on_the_tokens_alone",)),
    Mutation("mixture-mean-ignores-bound", "the mean of a pt-ordered mixture ignores its bound", "backbone/density.py",
             "out[:, 0] = torch.where(torch.isfinite(upper), bounded, out[:, 0])", "pass",
             ("tests/test_density.py::test_the_mixture_mean_against_hand_computed_means",
              "tests/test_decode_fidelity.py::test_means_fed_back_are_the_same_whatever_the_seed_and_keep_the_pt_order")),
    Mutation("decode-fidelity-mean-draws", "decode_fidelity's mean column draws", "benchmarks/decode_fidelity.py",
             "z = part.mean(part.upper) if mean else part.sample(generator, part.upper)",
             "z = part.sample(generator, part.upper)",
             ("tests/test_decode_fidelity.py::test_means_fed_back_are_the_same_whatever_the_seed_and_keep_the_pt_order",)),
    Mutation("head-retrain-trains-the-trunk", "head_retrain.py trains every weight, not the head's alone",
             "benchmarks/head_retrain.py", 'p.requires_grad_(name.startswith("density."))', "p.requires_grad_(True)",
             ("tests/test_head_retrain.py::test_the_trunk_stays_and_the_head_is_new",)),
    Mutation("pair-completion-given-features-dropped", "pair_completion.py gives the objects it was given the "
             "head's zeros, not their real features", "benchmarks/pair_completion.py",
             "x[:known] = fed[seqs.prefix:seqs.prefix + known]", "pass",
             ("tests/test_pair_completion.py::test_completion_keeps_the_given_objects_and_completes_the_rest",)),
    Mutation("pair-completion-prompt-left-out", "pair_completion.py completes every event from scratch",
             "benchmarks/pair_completion.py", 'start = 2 if given == "scratch" else seqs.prefix + given', "start = 2",
             ("tests/test_pair_completion.py::test_completion_keeps_the_given_objects_and_completes_the_rest",)),
    Mutation("pair-floor-not-turned", "pair_completion.py's floor turns each object by zero",
             "benchmarks/pair_completion.py", "phi = rng.uniform(-np.pi, np.pi, int((~first).sum()))",
             "phi = np.arctan2(x[~first, 3] * std[3] + mean[3], x[~first, 2] * std[2] + mean[2])",
             ("tests/test_pair_completion.py::test_turning_keeps_each_objects_own_kinematics_and_the_given_ones",)),
    Mutation("pair-data-at-centroids", "pair_completion.py reads the data at their codes' centroids in both views",
             "benchmarks/pair_completion.py", '"mean": seqs.features}',
             '"mean": backbone.code_features[torch.from_numpy(seqs.codes)].numpy()}',
             ("tests/test_pair_completion.py::test_cli_measures_the_data_it_was_given",)),
    Mutation("partner-probe-reads-its-own-jet", "partner_probe.py counts the jet it scores among its partners",
             "benchmarks/partner_probe.py", "valid = is_jet[rows] & (positions[None] <= cols[:, None])",
             "valid = is_jet[rows] & (positions[None] <= cols[:, None] + 1)",
             ("tests/test_partner_probe.py::test_a_jet_is_never_its_own_partner",)),
    Mutation("partner-direction-absolute", "partner_probe.py --pair direction reads each code's own phi, not its "
             "phi about the partner", "benchmarks/partner_probe.py", "dphi = self.code_kin[:, 2] - partner[..., 2]",
             "dphi = self.code_kin[:, 2] + 0 * partner[..., 2]",
             ("tests/test_partner_probe.py::test_each_codes_variables_with_a_partner_at_its_own_centroid",)),
    Mutation("partner-tilt-moves-the-types", "partner_probe.py's sampling tilt changes each type's probability",
             "benchmarks/partner_probe.py",
             "new[:, cols] += part[:, cols].logsumexp(-1, keepdim=True) - new[:, cols].logsumexp(-1, keepdim=True)",
             "pass",
             ("tests/test_partner_probe.py::test_sampling_with_the_probe_draws_what_it_was_trained_to_score",)),
    Mutation("partner-gate-open", "partner_probe.py's tilt starts with its bumps on, not as the backbone",
             "benchmarks/partner_probe.py", "self.gate = nn.Parameter(torch.zeros(()))",
             "self.gate = nn.Parameter(torch.ones(()))",
             ("tests/test_partner_probe.py::test_cli_trains_the_probe_and_reads_every_option",)),
    Mutation("generate-adjust-ignored", "generate calls its logits processor and samples the logits it had",
             "backbone/generate.py",
             "logits = adjust(logits, hidden, fed[:B, :n], fed_features[:B, :n] if feedback else None)",
             "adjust(logits, hidden, fed[:B, :n], fed_features[:B, :n] if feedback else None)",
             ("tests/test_backbone_model.py::test_a_logits_processor_sees_the_event_so_far_and_decides_the_draw",)),
    Mutation("pair-completion-probe-ignored", "pair_completion.py --probe loads the tilt but samples without it",
             "benchmarks/pair_completion.py", "mean=True, adjust=adjust)", "mean=True)",
             ("tests/test_partner_probe.py::test_pair_completion_samples_with_a_saved_probe",)),
    Mutation("momentum-basis-left-out", "momentum_logits widens the tilt but its basis is zero", "backbone/model.py",
             "parts.append(self.momentum_basis)", "parts.append(self.momentum_basis * 0)",
             ("tests/test_backbone_model.py::test_momentum_logits_tilt_each_code_by_its_standardized_momentum_terms",)),
    Mutation("momentum-basis-not-standardized", "the momentum terms enter the tilt in units of 100 GeV",
             "backbone/model.py", "basis = (basis - basis.mean(0)) / torch.where(std > 0, std, 1.0)", "basis = basis",
             ("tests/test_backbone_model.py::test_momentum_logits_tilt_each_code_by_its_standardized_momentum_terms",)),
    Mutation("momentum-from-normalized-log-pt", "the momentum basis reads pt off the normalized log pt",
             "backbone/pretrain.py", 'model.set_code_momenta(code["pt"], code["eta"], code["phi"], code["mass"])',
             'model.set_code_momenta(np.exp(table[:data.vocab.n_codes, 0]), code["eta"], code["phi"], code["mass"])',
             ("tests/test_backbone_pretrain.py::test_momentum_logits_read_each_codes_kinematics_in_gev",)),
    Mutation("decode-fidelity-feedback-not-fed", "decode_fidelity's fed-back draws read the real features",
             "benchmarks/decode_fidelity.py", "fed[:, step + 1][is_object[:, step]] = x[pick]", "pass",
             ("tests/test_decode_fidelity.py::test_head_draws_read_the_real_features_of_the_objects_before",)),
    Mutation("decode-fidelity-feedback-bound-from-real-pt", "decode_fidelity's fed-back draws are bounded by the "
             "real pt of the object before", "benchmarks/decode_fidelity.py",
             "mixture, _, _ = model.object_densities(hidden, targets, fed[:, 1:])",
             "mixture, _, _ = model.object_densities(hidden, targets, features[:, 1:])",
             ("tests/test_decode_fidelity.py::test_draws_fed_back_keep_the_pt_order_of_their_own_draws",)),
    Mutation("feature-tilt-on-default-device", "the feature tilt adds a tensor made on the default device",
             "backbone/model.py", "self.tilt_basis().to(hidden.dtype).T",
             "(self.tilt_basis() + torch.zeros(1)).to(hidden.dtype).T",
             ("tests/test_device_placement.py::test_sampling",)),
    Mutation("feature-basis-mask-on-default-device", "the mask that keeps special tokens out of the MLP basis is "
             "made on the default device", "backbone/model.py",
             "torch.arange(self.config.vocab_size, device=self.code_features.device)",
             "torch.arange(self.config.vocab_size)", ("tests/test_device_placement.py::test_sampling",)),
    Mutation("special-tokens-tilted-by-the-feature-mlp", "special tokens' logits are tilted by the MLP of their "
             "(zero) features", "backbone/model.py", "self.feature_basis(self.code_features) * is_code[:, None]",
             "self.feature_basis(self.code_features)",
             ("tests/test_backbone_model.py::test_feature_logits_width_adds_a_learnt_mlp_of_each_codes_features_to_the_tilt_basis",)),
    Mutation("tokenizer-trained-in-the-absolute-frame", "a leading_jet tokenizer is trained on events as they point",
             "tokenizer/train.py", "(in_frame(e, model_cfg.azimuth)[0] for e in (train_events, val_events))",
             "(e for e in (train_events, val_events))",
             ("tests/test_tokenizer.py::test_a_leading_jet_frame_tokenizer_is_blind_to_where_events_point",)),
    Mutation("decoded-events-not-turned-back", "decoding leaves events at their leading jet's phi = 0, whatever "
             "angle the tokens carry", "tokenizer/tokenizer.py",
             "return rotate_azimuth(Events(events.objects, info, events.process_names), -angle)",
             "return Events(events.objects, info, events.process_names)",
             ("tests/test_tokenizer.py::test_a_leading_jet_frame_tokenizer_is_blind_to_where_events_point",
              "tests/test_sample.py::test_a_leading_jet_frame_tokenizer_gets_each_sampled_event_turned_by_a_uniform_angle")),
    Mutation("sampled-events-not-turned", "a leading_jet tokenizer's generated events all point their leading jet "
             "at phi = 0", "backbone/sampling.py", 'info["azimuth"] = turn.uniform(-np.pi, np.pi, n)',
             "pass",
             ("tests/test_sample.py::test_a_leading_jet_frame_tokenizer_gets_each_sampled_event_turned_by_a_uniform_angle",)),
    Mutation("rng-not-restored", "the global RNG is not restored on resume", "common/checkpoint.py",
             'torch.set_rng_state(states["rng.torch"])', 'torch.get_rng_state()',
             ("tests/test_backbone_pretrain.py", "tests/test_training.py")),
    Mutation("best-weights-lost-on-resume", "the best weights are not restored when a run resumes",
             "common/training.py", 'self.best = {k[len("best."):]: v.to(device) for k, v in extra.items() '
             'if k.startswith("best.")} or None', "self.best = None",
             ("tests/test_training.py", "tests/test_reliability.py::test_killed_fine_tuning_resumes_to_the_same_classifier")),
    Mutation("process-dropout-is-mask-rate", "process dropout uses the mask rate instead of its own",
             "backbone/pretrain.py", "device=generator.device) < process_dropout", "device=generator.device) < rate",
             ("tests/test_backbone_pretrain.py",)),
    Mutation("micro-batches-share-masks", "the micro-batches of a step (grad_accum) draw the same masks",
             "backbone/pretrain.py", "* tc.grad_accum + micro)", "* tc.grad_accum)",
             ("tests/test_backbone_pretrain.py",)),
    Mutation("ddp-ranks-share-batches", "every DDP rank takes rank 0's batches", "common/training.py",
             "if i % self.world == self.rank:", "if i % self.world == 0:",
             ("tests/test_backbone_pretrain.py", "tests/test_training.py")),
    Mutation("charge-off-by-one", "decoded charge off by one", "tokenizer/tokenizer.py",
             "charge[s:s + len(ids)] = (q.argmax(dim=1) - 1)", "charge[s:s + len(ids)] = q.argmax(dim=1)",
             ("tests/test_tokenizer.py",)),
    Mutation("neighbouring-code", "decode the neighbouring code of each token", "tokenizer/model.py",
             "get_output_from_indices(ids[sel] - self.offsets[t])",
             "get_output_from_indices((ids[sel] - self.offsets[t] + 1) % self.codes_per_type[t])",
             ("tests/test_tokenizer.py",)),
    Mutation("met-phi-swapped", "MET phi from arctan2(x, y) instead of arctan2(y, x)", "events/root.py",
             'np.arctan2(v["py"], v["px"])', 'np.arctan2(v["px"], v["py"])', ("tests/test_root.py",)),
    Mutation("ids-restart-per-chunk", "event ids restart at 0 in each chunk of a file without an event branch",
             "events/root.py", '"event": np.arange(entry, entry + n, dtype=np.uint64)',
             '"event": np.arange(0, n, dtype=np.uint64)', ("tests/test_root.py",)),
    Mutation("jet-energy-scale", "+10% jet energy scale in the detector model", "events/reco.py",
             "pt, mass = pt * scale, mass * scale", "pt, mass = pt * scale * 1.1, mass * scale * 1.1",
             ("tests/test_events_generate.py",)),
    Mutation("process-not-in-prompt", "sampling puts MASK in the process slot, so --process is ignored",
             "backbone/sampling.py", "return [vocab.bos, vocab.process_token(process)]",
             "return [vocab.bos, vocab.mask]", ("tests/test_api.py", "tests/test_sample.py")),
    Mutation("prefill-positions", "positions restart at 0 when prefilling after a KV cache", "backbone/model.py",
             "pos = torch.arange(start, start + T, device=idx.device)", "pos = torch.arange(0, T, device=idx.device)",
             ("tests/test_backbone_model.py",)),
    Mutation("decode-mask-bound", "a decode step attends to keys before its position only", "backbone/model.py",
             "mask = (torch.arange(k.shape[2], device=x.device) <= pos)",
             "mask = (torch.arange(k.shape[2], device=x.device) < pos)", ("tests/test_backbone_model.py",)),
    Mutation("cache-length", "the KV cache length forgets the tokens already cached", "backbone/model.py",
             "kv_cache.length = start + T", "kv_cache.length = T", ("tests/test_backbone_model.py",)),
    Mutation("score-rows-reversed", "nll scores written to the reversed rows of each batch", "finetune/scores.py",
             "total[rows] = nll.sum(1).cpu().numpy()", "total[rows[::-1]] = nll.sum(1).cpu().numpy()",
             ("tests/test_api.py",)),
    Mutation("rerun-ignores-settings", "a rerun skips every existing output, made with other settings or not",
             "common/filejobs.py", "t.output.is_file() and job.signature_of(t.output) == t.signature",
             "t.output.is_file() and job.signature_of(t.output) is not None",
             ("tests/test_filejobs.py::test_a_job_runs_once_resumes_after_a_failure_and_redoes_only_what_changed",)),
    Mutation("combined-in-reverse", "a combined output takes the inputs' parts last first", "common/filejobs.py",
             "job.combine([t.output for t in tasks]", "job.combine([t.output for t in tasks[::-1]]",
             ("tests/test_filejobs.py::test_a_combined_output_is_written_once_every_part_is_complete",)),
    Mutation("model-loaded-per-task", "every task loads its model again", "common/executors.py",
             "    if key in _CACHE:\n", "    if False:\n",
             ("tests/test_filejobs.py::test_a_model_is_made_once_per_process_and_key",
              "tests/test_dask.py::test_each_worker_loads_the_model_once")),
    Mutation("temporaries-of-unfinished-outputs-removed", "the temporaries beside unfinished outputs are removed too",
             "common/filejobs.py", "        if out.is_file():\n            complete", "        if True:\n            complete",
             ("tests/test_filejobs.py::test_temporaries_of_killed_writers_are_removed_beside_complete_outputs_only",)),
    Mutation("blocks-out-of-order", "generated blocks are written in the order they finish, not their own",
             "events/pythia.py", "chunk = pending.popleft().result()",
             "chunk = (pending.pop() if len(pending) > 2 else pending.popleft()).result()",
             ("tests/test_dask.py::test_generation_gives_the_same_events_on_every_engine",)),
    Mutation("density-centroids-on-default-device", "the density head's code centroids are made on the default "
             "device (the CPU) beside buffers on the GPU", "backbone/density.py",
             "centroids = torch.as_tensor(code_features, dtype=torch.float32, device=device)",
             "centroids = torch.as_tensor(code_features, dtype=torch.float32)",
             ("tests/test_device_placement.py",)),
    Mutation("score-tails-on-default-device", "the density score's per-object tails are made on the default device",
             "finetune/scores.py", "feature_tail = torch.zeros(targets.shape, device=device)",
             "feature_tail = torch.zeros(targets.shape)", ("tests/test_device_placement.py",)),
    Mutation("compiled-step-unpadded", "a compiled pretraining step sees each batch at its own length (a compile "
             "per length)", "backbone/pretrain.py", "return min(block, -(-longest // LENGTH_BUCKET) * LENGTH_BUCKET)",
             "return longest", ("tests/test_backbone_pretrain.py::test_a_compiled_step_compiles_once_whatever_the_batch",)),
    Mutation("validation-weighted-by-events", "validation losses average batch means weighted by events, not targets",
             "backbone/pretrain.py", "n = torch.stack([terms.n_next, terms.n_masked, terms.n_density, terms.n_next]).double()",
             "n = torch.full((4,), float(len(events)), dtype=torch.float64)",
             ("tests/test_backbone_pretrain.py::test_validation_losses_do_not_depend_on_the_batch_size",)),
    Mutation("no-watchdog", "a run that reaches no safe point after SIGTERM runs on until SIGKILL", "common/interrupt.py",
             "            watchdog[0].start()", "            pass",
             ("tests/test_training.py::test_sigterm_in_a_stalled_first_step_exits_within_the_grace",)),
    Mutation("checkpoint-minutes-ignored", "pretraining writes checkpoints at evaluations only", "backbone/pretrain.py",
             "checkpoint_every_s=60 * tc.checkpoint_minutes,", "checkpoint_every_s=None,",
             ("tests/test_training.py::test_pretraining_writes_a_checkpoint_every_checkpoint_minutes",)),
    Mutation("empty-input-blocks-job", "an input without events fails in a job of several inputs too",
             "common/filejobs.py", '"settings": settings}, len(inputs) > 1))', '"settings": settings}, False))',
             ("tests/test_filejobs.py::test_an_input_without_events_is_an_error_alone_and_no_rows_among_others",)),
    Mutation("stale-parts-break-job", "the part folder is removed whatever else it holds: exit 2 after the merge",
             "common/filejobs.py", "    else:\n        folder.rmdir()", "    folder.rmdir()",
             ("tests/test_filejobs.py::test_parts_an_earlier_job_left_are_removed_and_other_files_kept",)),
    Mutation("settings-checked-per-file", "a job's settings are not checked before its tasks, only by each file",
             "common/filejobs.py", "    job.check(inputs, out, single and len(inputs) > 1)", "    pass",
             ("tests/test_filejobs.py::test_bad_settings_and_a_file_in_place_of_the_part_folder_are_refused_before_"
              "models_load", "tests/test_filejobs.py::test_reading_settings_are_refused_once_before_any_file")),
    Mutation("list-comments-are-inputs", "an @LIST file's # comment lines are taken as inputs", "common/filejobs.py",
             'if line.strip() and not line.strip().startswith("#")]', "if line.strip()]",
             ("tests/test_filejobs.py::test_a_list_file_holds_one_input_per_line_never_an_option",)),
    Mutation("score-file-over-its-input", "AnomalyScorer.score_file writes its score file over the input events",
             "finetune/scorer.py",
             '        check_output(out, [path, *self.model_folders, *self.reference_files], "score file")\n', "",
             ("tests/test_api_guards.py::test_score_file_refuses_to_write_over_its_input_also_through_a_link",)),
    Mutation("score-csv-short-row-cuts-columns", "a CSV score row with a field missing cuts every column to it",
             "finetune/score_store.py", "            if len(row) != len(header):",
             "            if len(row) > len(header):",
             ("tests/test_api_guards.py::test_a_damaged_score_csv_is_an_error_naming_line_and_column",)),
    Mutation("btag-wp-any-number", "any b-tag working point is taken: nan, -0.5 (all tagged), 2.0 (none)",
             "events/btag.py",
             "    if number is None or not math.isfinite(number) or (valid is not None and not valid[0] < number < "
             "valid[1]):", "    if number is None:",
             ("tests/test_api_guards.py::test_reading_with_a_working_point_outside_the_taggers_range_is_refused",
              "tests/test_cli_guards.py::test_a_btag_working_point_outside_the_rule_is_refused")),
    Mutation("process-token-ignored-in-training", "every pretraining event gets MASK in the process slot, so the "
             "process tokens never learn what they stand for", "backbone/data.py",
             "np.array([known.get(p, self.vocab.mask) for p in self.info[\"process\"]]",
             "np.array([self.vocab.mask for p in self.info[\"process\"]]",
             ("tests/test_sample.py::test_conditional_sampling_follows_each_process",)),
    Mutation("process-not-in-prompt-synthetic", "sampling puts MASK in the process slot (the fast synthetic test)",
             "backbone/sampling.py", "return [vocab.bos, vocab.process_token(process)]",
             "return [vocab.bos, vocab.mask]",
             ("tests/test_sample.py::test_conditional_sampling_follows_each_process",)),
    Mutation("type-head-unused", "the group head is made but the logits stay one softmax over the vocabulary",
             "backbone/model.py", "        if not starts:\n            return logits",
             "        if True:\n            return logits",
             ("tests/test_backbone_model.py::test_the_type_head_gives_each_group_its_own_probability",)),
    Mutation("type-head-unshifted", "each group's logsumexp without its maximum taken out first: exp overflows",
             "backbone/model.py", "(x - top.gather(-1, of_token)).exp()", "(x - 0 * top.gather(-1, of_token)).exp()",
             ("tests/test_backbone_model.py::test_the_type_head_gives_each_group_its_own_probability",)),
    Mutation("group-logsumexp-on-default-device", "the type head's per-group maxima are made on the default device",
             "backbone/model.py", 'top = x.detach().new_full(shape, float("-inf"))', 'top = torch.full(shape, float("-inf"))',
             ("tests/test_device_placement.py",)),
    Mutation("type-head-option-ignored", "model.type_head=false still gets the factorized output",
             "backbone/config.py", "output_groups=output_groups if self.type_head else ()",
             "output_groups=output_groups",
             ("tests/test_backbone_pretrain.py::test_the_type_head_groups_codes_by_their_object_type",)),
    Mutation("calibrated-ignores-classes", "the calibrated score measures every event against the first multiplicity "
             "class", "finetune/calibration.py", "cls_of = class_of(np.diff(offsets), self.starts)",
             "cls_of = np.zeros(len(offsets) - 1, np.int64)",
             ("tests/test_calibrated_scores.py::test_calibrated_p_values_are_uniform_for_every_object_count",)),
    Mutation("calibrated-pools-types", "per-object tails from every object's quantiles, not each type's",
             "finetune/calibration.py", "-self.types.get(int(t), self.types[-1]).log_p", "-self.types[-1].log_p",
             ("tests/test_calibrated_scores.py::test_per_object_blame_comes_from_each_types_own_quantiles",)),
    Mutation("drawn-features-not-fed-back", "a hybrid backbone samples on its codes' centroids, not on the features "
             "drawn for its objects", "backbone/generate.py", "feedback = density and bool(model.config.n_features)",
             "feedback = False",
             ("tests/test_backbone_model.py::test_hybrid_sampling_feeds_each_drawn_objects_features_back",)),
    Mutation("decode-step-ignores-features", "the cached (and graph-captured) decoding step reads no features",
             "backbone/generate.py", "return self.model.decode_step(self.token, self.pos, self.cache, self.features)",
             "return self.model.decode_step(self.token, self.pos, self.cache)", ("tests/test_backbone_model.py",)),
    Mutation("fed-back-features-on-default-device", "the features fed back in sampling are made on the default device",
             "backbone/generate.py",
             "fed_features = torch.zeros(len(fed), T0 + max_new_tokens, model.config.n_features, device=device)",
             "fed_features = torch.zeros(len(fed), T0 + max_new_tokens, model.config.n_features)",
             ("tests/test_device_placement.py::test_sampling",)),
    Mutation("fed-back-features-unclamped", "a hybrid backbone reads back b-tags and etas drawn outside their "
             "physical ranges", "backbone/generate.py", "return z, model.density.clamp_features(model.density.from_density(",
             "return z, (lambda x, _: x)(model.density.from_density(",
             ("tests/test_backbone_model.py::test_hybrid_sampling_feeds_each_drawn_objects_features_back",)),
    Mutation("masked-pass-never-skipped", "a run that weights the masked loss 0 still pays for its pass",
             "backbone/pretrain.py", "masked=tc.weight_masked > 0,", "masked=True,",
             ("tests/test_backbone_pretrain.py::test_a_masked_weight_of_zero_skips_the_bidirectional_pass",)),
    Mutation("skipped-masked-pass-escapes-ddp", "without the masked pass, the causal pass runs outside the DDP "
             "module: no gradient is all-reduced", "backbone/pretrain.py",
             "out = (model if masked else wrapped or model)(", "out = model(",
             ("tests/test_backbone_pretrain.py::test_ddp_equals_one_process_with_the_same_total_batch",)),
    Mutation("ema-not-saved", "an ema_decay run saves the last step's weights, not their average",
             "backbone/pretrain.py", "        average.copy_to_model()\n", "        pass\n",
             ("tests/test_backbone_pretrain.py::test_an_ema_run_saves_and_evaluates_the_average_and_checkpoints_the_raw_weights",)),
    Mutation("ema-not-checkpointed", "a resumed ema_decay run restarts its average at the resumed weights",
             "common/training.py", 'extra.update({f"average.{k}": v for k, v in self.average.average.items()})',
             "pass", ("tests/test_backbone_pretrain.py::test_resumed_pretraining_equals_uninterrupted",)),
    Mutation("ema-young-weights-not-forgotten", "the average keeps the random initial weights at the full decay",
             "common/averaging.py", "weight = 1 - min(self.decay, (1 + step) / (10 + step))",
             "weight = 1 - self.decay", ("tests/test_training.py::test_a_weight_average_by_hand",)),
    Mutation("pt-order-not-kept", "the sampler draws each object's log pt without the bound of the last object "
             "of its group", "backbone/generate.py", "None if grammar is None else grammar.upper_log_pt(token),",
             "None,", ("tests/test_sample.py::test_hybrid_sampling_keeps_each_group_in_descending_pt",)),
    Mutation("truncated-components-not-reweighted", "a bounded draw picks components by their weights alone, "
             "not by their mass below the bound", "backbone/density.py",
             "log_weights = log_weights + log_below.to(log_weights.dtype)", "log_weights = log_weights",
             ("tests/test_density.py::test_draws_below_a_bound_follow_the_truncated_density",)),
    Mutation("grammar-forgets-log-pt", "the grammar never records the drawn log pt: no object is bounded",
             "backbone/grammar.py", "self.last_log_pt = torch.where(is_code, log_pt.to(self.last_log_pt.dtype), "
             "self.last_log_pt)", "pass",
             ("tests/test_sample.py::test_grammar_bounds_each_objects_log_pt_by_the_last_of_its_group",)),
    Mutation("grammar-bound-on-default-device", "the grammar keeps the last drawn log pt on the default device",
             "backbone/grammar.py", 'self.last_log_pt = torch.full((batch,), float("inf"), device=device)',
             'self.last_log_pt = torch.full((batch,), float("inf"))', ("tests/test_device_placement.py::test_sampling",)),
    Mutation("guidance-ignored", "the sampler draws from the conditional logits whatever the guidance",
             "backbone/generate.py", "logits, hidden = free + guidance * (conditional - free), hidden[:B]",
             "logits, hidden = conditional, hidden[:B]",
             ("tests/test_backbone_model.py::test_guided_sampling_draws_from_the_guided_logits",)),
    Mutation("guidance-not-passed-on", "sample_events never hands the unconditional prompts to the sampler",
             "backbone/sampling.py", "device=device) if unconditional else None",
             "device=device) if False else None",
             ("tests/test_sample.py::test_sample_guidance_changes_the_events_of_the_same_seed",)),
    Mutation("benchmark-guidance-not-in-teacher-forcing", "conditional_generation.py reports the conditional "
             "model's held-out loss whatever the guidance", "benchmarks/conditional_generation.py",
             "logits = free + guidance * (logits - free)", "pass",
             ("tests/test_conditional_generation.py::test_teacher_forced_loss_is_that_of_the_guided_distribution",)),
    Mutation("unconditional-prompts-on-default-device", "the unknown-process prompts are made on the default "
             "device", "backbone/sampling.py", "torch.tensor([unconditional] * n, device=device) if unconditional",
             "torch.tensor([unconditional] * n) if unconditional", ("tests/test_device_placement.py::test_sampling",)),
    Mutation("unconditional-stream-misses-the-draws", "the unconditional rows are fed their own prompt's "
             "tokens, not the draws of the conditional rows", "backbone/generate.py", "        fed[:, n] = both(token)",
             "        fed[:B, n] = token",
             ("tests/test_backbone_model.py::test_guided_sampling_draws_from_the_guided_logits",)),
    Mutation("finetune-length-bucket-ignored", "train.length_bucket does not reach the fine-tuning batches",
             "finetune/train.py", "index_batches(rng, cfg.batch_size, train_idx, cfg.length_bucket)",
             "index_batches(rng, cfg.batch_size, train_idx)",
             ("tests/test_finetune.py::test_fine_tuning_batches_follow_the_length_bucket",)),
    Mutation("length-split-ignored", "data.length_split does not slice the training batches", "backbone/pretrain.py",
             "length_slices(data, next(batches), cfg.data.length_split)", "length_slices(data, next(batches), 1)",
             ("tests/test_backbone_pretrain.py::test_a_batch_run_in_length_slices_takes_the_same_step",)),
    Mutation("length-slices-weighted-equally", "a batch's slices count as much each, not by their targets",
             "backbone/pretrain.py", "values)).mul(n).sum() / n.sum().clamp(min=1)", "values)).mean()",
             ("tests/test_backbone_pretrain.py::test_a_batch_run_in_length_slices_takes_the_same_step",)),
    Mutation("length-bucket-ignored", "data.length_bucket does not reach the training batches", "backbone/pretrain.py",
             "indices=train_idx, bucket=cfg.data.length_bucket)", "indices=train_idx)",
             ("tests/test_backbone_pretrain.py::test_the_length_bucket_sets_how_training_batches_mix_lengths",)),
    Mutation("type-weight-ignored", "train.weight_type does not reach the training loss", "backbone/pretrain.py",
             "return loss + tc.weight_type * terms.group", "return loss + 0 * terms.group",
             ("tests/test_backbone_pretrain.py::test_the_type_weight_scales_the_group_loss_in_the_step",)),
    Mutation("type-weight-unscaled", "train.weight_type switches the group loss on at weight 1", "backbone/pretrain.py",
             "return loss + tc.weight_type * terms.group", "return loss + terms.group",
             ("tests/test_backbone_pretrain.py::test_the_type_weight_scales_the_group_loss_in_the_step",)),
    Mutation("group-loss-of-the-wrong-group", "the group loss reads the group of the token before the target",
             "backbone/model.py", "self.group_of_token[targets.clamp(min=0)]",
             "self.group_of_token[targets.roll(1, -1).clamp(min=0)]",
             ("tests/test_backbone_pretrain.py::test_the_group_loss_is_the_type_part_of_the_token_loss",)),
    Mutation("pt-order-ignored-in-training", "model.density_pt_order does not reach the density loss",
             "backbone/model.py",
             "mixture.upper = self.density.upper_log_pt(targets, z[:, 0].view(targets.shape)).flatten()", "pass",
             ("tests/test_backbone_pretrain.py::test_the_pt_ordered_density_normalizes_each_jet_below_the_one_before",)),
    Mutation("pt-order-ignored-in-scoring", "model.density_pt_order does not reach the densities the scores "
             "read", "backbone/model.py", "mixture.upper = self.density.upper_log_pt(targets, z[..., 0])[is_object]",
             "pass",
             ("tests/test_backbone_pretrain.py::test_the_pt_ordered_density_normalizes_each_jet_below_the_one_before",)),
    Mutation("pt-order-bound-across-groups", "an object is bounded by the object before it of another group",
             "backbone/density.py", "same = is_code[:, 1:] & (group[:, 1:] == group[:, :-1])",
             "same = is_code[:, 1:] & is_code[:, :-1]",
             ("tests/test_density.py::test_the_bound_is_the_log_pt_of_the_object_before_in_its_group",)),
    Mutation("pt-order-out-of-order-truncated", "an object above its bound is normalized below it too",
             "backbone/density.py", "bounded = torch.isfinite(self.upper) & (z[:, 0] <= self.upper)",
             "bounded = torch.isfinite(self.upper)",
             ("tests/test_density.py::test_a_pt_ordered_density_is_normalized_below_its_bound",)),
    Mutation("pt-order-infinite-bound-in-the-gradient", "unbounded objects keep their infinite bound in the "
             "normalization (a NaN gradient through the scale)", "backbone/density.py",
             "upper = torch.where(bounded, self.upper, z[:, 0].detach())", "upper = self.upper",
             ("tests/test_backbone_pretrain.py::test_the_pt_ordered_density_normalizes_each_jet_below_the_one_before",)),
    Mutation("order-bias-benchmark-ignores-groups", "density_order_bias.py bounds every object by the one before it, "
             "whatever its group", "benchmarks/density_order_bias.py",
             "upper = upper_log_pt(targets, z_all, groups)[is_object]",
             "upper = upper_log_pt(targets, z_all, torch.zeros_like(groups))[is_object]",
             ("tests/test_backbone_pretrain.py::test_the_order_bias_benchmark_counts_the_jets_after_a_jet",)),
    Mutation("code-groups-on-default-device", "the density head's code groups are made on the default device",
             "backbone/density.py", "            self.code_group.copy_(code_group(code_types, device))",
             "            self.code_group.copy_(code_group(code_types))", ("tests/test_device_placement.py",)),
    Mutation("decode-fidelity-feeds-centroids", "decode_fidelity.py teacher forces the hybrid with the codes' "
             "centroids, not the real features before each object", "benchmarks/decode_fidelity.py",
             "features=fed[:, :-1] if model.config.n_features else None", "features=None",
             ("tests/test_decode_fidelity.py",)),
    Mutation("decode-fidelity-without-pt-bound", "decode_fidelity.py draws a pt-ordered head's objects without "
             "their bound", "benchmarks/decode_fidelity.py", "else part.sample(generator, part.upper)",
             "else part.sample(generator)", ("tests/test_decode_fidelity.py",)),
    Mutation("second-lepton-read-at-the-first", "second_lepton.py reads the chance of a lepton where the first "
             "lepton is predicted, not after it", "benchmarks/second_lepton.py",
             "probs[rows, at + 1, :n_codes]", "probs[rows, at, :n_codes]", ("tests/test_second_lepton.py",)),
    Mutation("sampling-keeps-the-multiplicity-token", "sampled sequences are cut after the prompt only, so the "
             "multiplicity token is read as the events' end", "backbone/sampling.py",
             "skip = len(prompt) + int(vocab.multiplicities is not None)", "skip = len(prompt)",
             ("tests/test_multiplicity.py",)),
    Mutation("grammar-ignores-announced-counts", "after the multiplicity token the grammar allows any object",
             "backbone/grammar.py", "allowed = allowed & torch.where(self.kind >= 0, open_kind[:, kind], done)",
             "allowed = allowed", ("tests/test_multiplicity.py",)),
    Mutation("grammar-counts-down-nothing", "the grammar does not count drawn objects against the announcement",
             "backbone/grammar.py", "self.left[rows[kind >= 0], kind[kind >= 0]] -= 1", "pass",
             ("tests/test_multiplicity.py",)),
    Mutation("scores-leave-out-the-multiplicity-token", "event likelihoods leave out the multiplicity token",
             "finetune/scores.py", " | (targets >= vocab.first_count)", "", ("tests/test_multiplicity.py",)),
    Mutation("unlabelled-sequences-own-vocabulary", "finetune sequences number the multiplicity tokens without "
             "the backbone's process tokens", "finetune/data.py",
             "seqs = TokenSequences(chunks, vocab.n_codes, conditional, vocab, source=source)",
             "seqs = TokenSequences(chunks, vocab.n_codes, conditional, Vocab(vocab.n_codes, (), vocab.multiplicities), "
             "source=source)", ("tests/test_multiplicity.py",)),
    Mutation("conditional-generation-one-seed-for-all", "every process sampled with the run's seed, the same noise",
             "benchmarks/conditional_generation.py", "seed = process_seed(seed, process)", "seed = seed",
             ("tests/test_conditional_generation.py",)),
    Mutation("count-fit-ignores-the-distribution", "the exact count fit weighs every multiplicity token alike",
             "benchmarks/conditional_generation.py", "np.bincount(model, weights=p, minlength=top)",
             "np.bincount(model, minlength=top) * p.mean()", ("tests/test_conditional_generation.py",)),
    Mutation("multiplicity-caps-ignored-at-sampling", "the grammar offers counts beyond the sampling caps",
             "backbone/grammar.py",
             "self.count_ok[vocab.first_count:] = torch.from_numpy(self.announced.within(caps)).to(device)", "pass", ("tests/test_multiplicity.py",)),
]


def copy_repo(dest: Path) -> None:
    """The tracked and untracked-but-not-ignored files of the repo (the code as it is, uncommitted edits included)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def apply(mutation: Mutation, root: Path) -> None:
    path = root / mutation.file
    text = path.read_text()
    if text.count(mutation.old) != 1:
        raise SystemExit(f"{mutation.name}: the code to mutate occurs {text.count(mutation.old)} times in "
                         f"{mutation.file} (expected once); update the mutation to the current code")
    path.write_text(text.replace(mutation.old, mutation.new))


#: the unmutated code: its tests must pass, or a "caught" would mean nothing
CONTROL = Mutation("control", "no bug: every test named above passes", "", "", "",
                   tuple(dict.fromkeys(t for m in MUTATIONS for t in m.tests)))


def run(mutation: Mutation, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutation.name}-") as tmp:
        root = Path(tmp) / REPO.name
        copy_repo(root)
        if (REPO.parent / "shared").is_dir():  # the shared data files the tests read, beside the copy as here
            (Path(tmp) / "shared").symlink_to(REPO.parent / "shared")
        if mutation is not CONTROL:
            apply(mutation, root)
        # the copy comes first on the path: its modules, not the installed (editable) ones, are imported
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                                   *mutation.tests], cwd=root, env=env, capture_output=True, text=True,
                                  timeout=timeout)
            code, tail = proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()[-1:]
        except subprocess.TimeoutExpired:
            code, tail = -1, ["timed out"]
    # 1: tests failed (caught); 0: passed (missed); 5: no test ran, 2-4: pytest could not run them
    verdict = {0: "missed", 1: "caught"}.get(code, "error")
    return {"name": mutation.name, "what": mutation.what, "verdict": verdict, "pytest_exit": code,
            "seconds": round(time.perf_counter() - start, 1), "summary": tail[0] if tail else ""}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per mutation (default 1800)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "mutation_check.json")
    args = parser.parse_args(argv)
    known = {m.name: m for m in MUTATIONS}
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:32s} {m.file:28s} {m.what}")
        return 0
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown mutations {unknown}; --list shows them")
    control = run(CONTROL, args.timeout)
    print(f"control: the tests {'pass' if control['verdict'] == 'missed' else 'FAIL'} on the code as it is "
          f"({control['seconds']} s; {control['summary']})", flush=True)
    if control["verdict"] != "missed":
        return 2
    results = []
    for m in [known[n] for n in args.names] or MUTATIONS:
        results.append(run(m, args.timeout))
        r = results[-1]
        print(f"{r['verdict']:7s} {r['name']:32s} {r['seconds']:7.1f} s  {r['summary']}", flush=True)
    missed = [r["name"] for r in results if r["verdict"] != "caught"]
    print(f"{len(results) - len(missed)} of {len(results)} caught" + (f"; not caught: {missed}" if missed else ""))
    if not args.names:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"python": sys.version.split()[0], "results": results}, indent=1))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
