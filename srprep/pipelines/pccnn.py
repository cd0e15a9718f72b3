"""PCCNN training workflow: every series prepared (q-first float32, mask, per-shell
xmax), then one training task.  Prediction runs through
:class:`srprep.pipelines.angular.AngularWorkflow`, shared with the ``sh`` baseline."""
from __future__ import annotations

from pydra.compose import workflow

from srprep.tasks._types import File, NiftiImage
from srprep.tasks.compose import define_workflow
from srprep.tasks.pccnn import PrepareDWI, TrainPCCNN


@define_workflow(outputs=["weights", "report"])
def PCCNNTraining(dwi: list[NiftiImage], bval: list[File], bvec: list[File], names: list[str],
                  subject_split: dict, config: dict, resume: str | None = None
                  ) -> tuple[File, dict]:
    """Prepare every dMRI run (mask, xmax, q-first npy), then train a PCCNN variant and
    compare it with SH on the held-out subjects.

    Parameters
    ----------
    dwi : list[NiftiImage]
        dMRI runs.
    bval : list[File]
        Their b-values.
    bvec : list[File]
        Their b-vectors.
    names : list[str]
        ``sub-<label>[_ses-<label>]_dwi`` per run; the subject part keys the split.
    subject_split : dict
        Subject-level train/val/test lists.
    config : dict
        PCCNNTrainConfig fields.
    resume : str, optional
        Lightning checkpoint.

    Returns
    -------
    weights : File
        Best model (released LightningModule state_dict layout).
    report : dict
        Training and test figures.
    """
    prepared = workflow.add(
        PrepareDWI().split(("in_file", "bval", "bvec", "name"), in_file=dwi, bval=bval,
                           bvec=bvec, name=names).combine("name"), name="prepare")
    trained = workflow.add(TrainPCCNN(subjects=prepared.out, subject_split=subject_split,
                                      config=config, resume=resume), name="train")
    return trained.weights, trained.report
