"""Self-check quizzes: a few multiple-choice questions per chapter, graded automatically.

The questions are data (:data:`QUIZZES`, one tuple of :class:`Question` per chapter 1-7); each
names the section of its chapter that answers it. A learner answers with letters, in order::

    from course_lib import quiz
    print(quiz.to_text(3))          # the questions of Chapter 3
    result = quiz.check(3, "abca")  # or ["a", "b", ...], or {1: "a", 2: "b", ...}
    print(result)                   # score and, for every wrong answer, why and where to read

``quiz.show(3)`` builds the same quiz as ipywidgets (radio buttons and a *Check* button) in a
running notebook; the book's page *Chapter summaries and self-check quizzes* shows the
questions without a kernel (:func:`to_markdown`). The quizzes are for self-study and carry
no marks: the graded work of a class is the nbgrader exercises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Question", "QuizResult", "QUIZZES", "chapters", "questions", "check",
           "to_markdown", "to_text", "show"]

LETTERS = "abcdefgh"


@dataclass(frozen=True)
class Question:
    """One multiple-choice question with exactly one right choice.

    ``answer`` is the letter of the right choice (``"a"`` for the first); ``why`` is the
    explanation a learner reads after a wrong answer; ``section`` is the heading of the
    chapter's page or notebook where the answer is worked out.
    """

    prompt: str
    choices: tuple[str, ...]
    answer: str
    why: str
    section: str


@dataclass(frozen=True)
class QuizResult:
    """The outcome of :func:`check`: ``score`` right answers out of ``max_score``.

    ``feedback`` holds one line per question (a tick, or a cross with the reason and the
    section to read); ``wrong`` the numbers (from 1) of the questions answered wrongly or not
    at all.
    """

    chapter: int
    score: int
    max_score: int
    feedback: tuple[str, ...] = field(repr=False)
    wrong: tuple[int, ...] = ()

    @property
    def passed(self) -> bool:
        """Every answer right."""
        return self.score == self.max_score

    def __str__(self) -> str:
        head = f"Chapter {self.chapter} quiz: {self.score}/{self.max_score}"
        if self.passed:
            head += ": all right."
        return "\n".join([head, *self.feedback])


def _q(prompt, choices, answer, why, section):
    return Question(prompt, tuple(choices), answer, why, section)


QUIZZES: dict[int, tuple[Question, ...]] = {
    1: (
        _q("In this course, a generative model of images is ...",
           ["a fixed rule that turns one image into another, such as a smoothing filter",
            "a probability distribution over images, fitted to examples, that can be sampled "
            "and, for some models, evaluated",
            "a classifier that tells digits apart",
            "a collection of stored training images"],
           "b", "A generative model is a distribution p_θ(x) adjusted to resemble p_data(x); "
           "it is used to sample new images and, where possible, to evaluate how probable an "
           "image is. A fixed filter is image processing, not generation.",
           "Images as samples from a distribution"),
        _q("Restoring an image y damaged by noise, with a generative prior p(x) and a model "
           "p(y | x) of the damage, means ...",
           ["sampling from p(x) and ignoring y",
            "applying the same filter to every image",
            "inference in the posterior p(x | y) ∝ p(y | x) p(x): its most probable image, "
            "or its mean",
            "training a discriminator on y"],
           "c", "Bayes' rule combines the prior and the damage model into a posterior; "
           "restoration is inference in it (Chapter 4 finds its most probable image).",
           "What it is used for"),
        _q("Minimising KL(p_data ‖ p_θ) over θ is the same as ...",
           ["maximising the expected log-likelihood E_{p_data}[log p_θ(x)]",
            "minimising the entropy of the data",
            "making the model's mean image equal to the data's",
            "maximising KL(p_θ ‖ p_data)"],
           "a", "KL(p_data ‖ p_θ) = E[log p_data] − E[log p_θ]; the first term does not "
           "depend on θ, so minimising the divergence maximises the expected log-likelihood "
           "(pen-and-paper exercise 1.A).",
           "The four models of the course"),
        _q("Which of the course's four models has no likelihood at all?",
           ["the Gaussian mixture", "the Markov random field", "the variational autoencoder",
            "the generative adversarial network"],
           "d", "The GAN trains a generator against a discriminator and defines no density; "
           "the MRF has one up to its partition function, the VAE a lower bound on it.",
           "The four models of the course"),
        _q("Why must a fitted model be judged on images it was not trained on?",
           ["the training images are too few to compute a score",
            "the parameters were chosen to make the training average of log p_θ large, so "
            "that average is optimistic",
            "held-out images are less noisy",
            "the test split is larger than the training split"],
           "b", "The training average was maximised by the fit, so it overestimates what the "
           "model gives new images; only images the fit never saw give an honest estimate "
           "(the overfitting gap of Chapter 2).",
           "The four models of the course"),
    ),
    2: (
        _q("Why do the course's 8×8 digits have 17 grey levels?",
           ["they are 8-bit scans reduced to 17 shades for speed",
            "each pixel counts the inked pixels of a 4×4 block of a 32×32 black-and-white "
            "scan: 0 to 16",
            "one level per digit class, plus seven for the background",
            "scikit-learn quantises every data set to 17 levels"],
           "b", "The UCI digits were scanned at 32×32 in black and white and cut into 4×4 "
           "blocks; each pixel of the 8×8 image is the number of inked pixels in its block.",
           "An image is an array of numbers"),
        _q("Why are the digits dequantised, (k + u)/17 with u uniform, before a continuous "
           "density is fitted?",
           ["to enlarge the images",
            "to hide the labels from the model",
            "a density could pile up on the 17 values and its likelihood grow without bound; "
            "on dequantised data its mean log-density bounds the log-probability of the "
            "discrete images",
            "to make training faster"],
           "c", "A density can concentrate on a finite set of points and reach an infinite "
           "likelihood; spreading each level over its own cell prevents that, and by "
           "Jensen's inequality the result is a bound on the discrete log-probability "
           "(bits per pixel).",
           "One scale for likelihoods: dequantisation and bits per pixel"),
        _q("A 'copier' returns random training images as its samples. Which score exposes "
           "it?",
           ["FID", "precision and recall", "KID",
            "the memorisation ratio (and the held-out likelihood)"],
           "d", "The copier's samples are real digits, so every sample-based score rates it "
           "like real data; only the distance to the training set (a ratio of 0) and the "
           "likelihood of unseen digits show that it learnt nothing.",
           "The copier: perfect samples, no generalisation"),
        _q("Two models score FID 20.1 ± 1.0 and 21.0 ± 1.2 (mean ± standard deviation over "
           "the protocol's draws). What does the book conclude?",
           ["the first model is better",
            "nothing: the difference is smaller than twice the combined spread",
            "the second model is better",
            "the two models are the same distribution"],
           "b", "The book calls two models different on a score only when their means differ "
           "by more than 2·sqrt(s_a² + s_b²), here about 3.1; a gap of 0.9 could be a lucky "
           "draw. Not separated does not mean identical, either.",
           "Which differences the book interprets"),
        _q("Sampling the Gaussian with its covariance scaled by a temperature τ > 1 "
           "(hotter samples) ...",
           ["raises precision and lowers recall",
            "changes neither precision nor recall",
            "lowers both",
            "lowers precision and raises recall"],
           "d", "Hot samples spread over more of the feature space: they cover more real "
           "digits (recall rises) but land more often where no real digit lives (precision "
           "falls). This is the quality-diversity trade-off.",
           "Exploring a trade-off: sampling temperature"),
    ),
    3: (
        _q("Why has the maximum-likelihood fit of a mixture no closed form?",
           ["the log-likelihood has a sum inside the logarithm, so the stationarity "
            "conditions are coupled through the responsibilities",
            "a single Gaussian has no closed-form maximum-likelihood estimate",
            "the digits are discrete",
            "the weights must be positive"],
           "a", "Setting the gradient to zero gives μ_k as a responsibility-weighted mean, but "
           "the responsibilities depend on every parameter: a coupled nonlinear system. EM "
           "solves it by alternating.",
           "Why maximum likelihood has no closed form"),
        _q("Why does the E-step compute the responsibilities in log space with "
           "log-sum-exp?",
           ["it is faster than exponentiating",
            "responsibilities can be negative",
            "log-densities of about −1000 underflow to 0 when exponentiated, and the "
            "normalisation becomes 0/0 = NaN",
            "the M-step needs logarithms"],
           "c", "In 64 dimensions a component that does not fit an image easily gives it a "
           "log-density of −1000, and e^−1000 is 0 in double precision (the smallest "
           "positive double is about e^−745). Subtracting the maximum first keeps the sum "
           "between 1 and K.",
           "The E-step, in log space"),
        _q("What does one EM iteration guarantee when reg_covar = 0?",
           ["the global maximum of the likelihood",
            "the training log-likelihood does not decrease",
            "the held-out likelihood increases",
            "the right number of components"],
           "b", "The E-step makes the bound touch the log-likelihood and the M-step maximises "
           "the bound, so ℓ(θ^{t+1}) ≥ ℓ(θ^t); EM reaches a local maximum, not necessarily "
           "the global one. With reg_covar > 0 small drops are possible.",
           "What EM guarantees, and what `reg_covar` changes"),
        _q("Why is the maximum-likelihood problem of a mixture ill-posed?",
           ["EM is too slow to reach the maximum",
            "the weights must sum to one",
            "BIC penalises the number of parameters",
            "a component centred on one training point whose covariance shrinks to 0 sends "
            "the likelihood to +∞"],
           "d", "The density (2πσ²)^{-D/2} of a collapsing component grows without bound. "
           "Adding ε·I to every covariance (reg_covar) keeps each density bounded.",
           "Degenerate solutions and `reg_covar`"),
        _q("Why cannot the training log-likelihood choose the number of components K?",
           ["it always improves with more components",
            "it cannot be computed for K > 1",
            "it prefers K = 1",
            "it depends on the covariance type only"],
           "a", "More components always fit the training images at least as well (in the "
           "limit one spike per image). BIC and AIC add a penalty on the number of free "
           "parameters; the held-out likelihood is the direct check.",
           "Choosing $K$: BIC and AIC"),
    ),
    4: (
        _q("In p(x) = exp(Σ_c θ_c φ_c(x)) / Z(θ), the partition function Z(θ) ...",
           ["is the numerator, the image's unnormalised score",
            "is the normaliser in the denominator: the sum of the unnormalised score over all "
            "images, the same for every image",
            "is learned by EM from the data",
            "is the energy of the image"],
           "b", "Z sits in the denominator and makes the probabilities add up to one; it does "
           "not depend on the image (erratum 1: the article calls it the numerator).",
           "The Gibbs distribution and the partition function"),
        _q("What does Gibbs sampling of an MRF need?",
           ["the partition function Z",
            "a discriminator",
            "only each pixel's conditional distribution given its neighbours",
            "the gradient of log Z"],
           "c", "One pixel given all the others depends only on its neighbours (the local "
           "field), and Z cancels from that conditional.",
           "Gibbs sampling"),
        _q("The gradient of the average log-likelihood of an MRF with respect to θ_c is ...",
           ["E_data[φ_c] − E_model[φ_c]",
            "E_data[φ_c]",
            "E_model[φ_c] − E_data[φ_c]",
            "−log Z(θ)"],
           "a", "The data term differentiates to the data average of the feature, log Z to "
           "its model average. The likelihood is concave and its maximum matches the "
           "moments; the model average is the hard part (SML estimates it, "
           "pseudo-likelihood avoids it).",
           "Learning the parameters"),
        _q("Why is EM the wrong algorithm to learn a fully observed MRF?",
           ["EM works only for Gaussian models",
            "EM needs class labels",
            "EM diverges on binary data",
            "nothing is hidden: the E-step is empty and EM reduces to maximising the "
            "likelihood directly, where Z is the difficulty"],
           "d", "EM is for models with latent variables; in a fully observed MRF there is "
           "nothing to infer (erratum 2). EM belongs where something is hidden, as in "
           "restoration.",
           "Learning the parameters"),
        _q("Below T_c, single-site Gibbs updates from a random start stay in stripe and domain "
           "states for a long time. What does that show?",
           ["the Gibbs sampler is not exact",
            "exact is not the same as converged: the chain has not reached equilibrium, and "
            "τ_int, the effective sample size and R̂ across chains detect it",
            "the Ising model has no phase transition",
            "the lattice needs open boundaries"],
           "b", "Each update leaves the right distribution invariant, yet local moves cross "
           "between domain states very slowly; diagnostics over several chains reveal it, "
           "and Swendsen–Wang cluster updates avoid it.",
           "Is the chain at equilibrium?"),
    ),
    5: (
        _q("For a fixed generator with sample distribution q, the discriminator that "
           "maximises the value function is ...",
           ["D*(x) = p(x) / (p(x) + q(x))",
            "D*(x) = q(x) / (p(x) + q(x))",
            "D*(x) = 1/2 everywhere",
            "D*(x) = p(x) q(x)"],
           "a", "Pointwise, a·log y + b·log(1 − y) is maximised at y = a/(a + b) with "
           "a = p(x), b = q(x) (pen-and-paper exercise 5.A). It is 1/2 everywhere only when "
           "q = p.",
           "The optimal discriminator and the Jensen–Shannon divergence"),
        _q("With the optimal discriminator the value function equals −log 4 + 2·JS(p ‖ q). "
           "If the discriminator were optimal at every step, the generator of the minimax "
           "game would minimise ...",
           ["KL(p ‖ q)",
            "the Jensen–Shannon divergence between data and model",
            "the ELBO",
            "the number of modes"],
           "b", "Only if the discriminator were optimal at every step; in practice it is a "
           "network one gradient step behind, JS gives no direction when p and q barely "
           "overlap, and the non-saturating loss used in practice follows a different "
           "objective.",
           "The optimal discriminator and the Jensen–Shannon divergence"),
        _q("Why is the generator trained with the non-saturating loss −log D(G(z)) rather "
           "than log(1 − D(G(z)))?",
           ["it has a different fixed point",
            "it gives the GAN a likelihood",
            "it uses less memory",
            "when the discriminator rejects a sample (D ≈ 0) the minimax loss's gradient "
            "vanishes, while the non-saturating one is largest"],
           "d", "With respect to the logit, the minimax gradient is −D and the non-saturating "
           "one −(1 − D): at D = 0.01, 0.01 against 0.99. Both have the same fixed point, "
           "D = 1/2.",
           "Why the generator does not minimise $V$ in practice"),
        _q("What is p_z in a GAN?",
           ["the density of a noise image that the generator outputs",
            "the distribution of the real images",
            "the fixed prior of the generator's input, a latent vector (here a standard "
            "Gaussian of low dimension)",
            "the discriminator's output"],
           "c", "The randomness of a GAN lives in the latent vector z ~ p_z; the generator is "
           "deterministic and its output G(z) is the image (erratum 3).",
           "Two players"),
        _q("What is mode collapse?",
           ["the generator putting its samples on only a few of the data's modes",
            "the discriminator's loss reaching zero",
            "the likelihood becoming infinite",
            "the learning rate decaying to zero"],
           "a", "Trained against the current discriminator, the generator moves its samples "
           "to wherever D is highest; the two can chase each other around the modes. The "
           "remedies that act on it work during training (the R1 penalty, a decaying learning "
           "rate); rejection sampling afterwards only reweights the modes the generator "
           "already covers and cannot bring back a lost one.",
           "Mode collapse, two training-time remedies and a sampling step"),
        _q("At the optimal discriminator, the non-saturating generator loss follows the "
           "gradient of ...",
           ["2·JS(p ‖ q), like the minimax loss",
            "the forward KL(p ‖ q), like maximum likelihood",
            "KL(q ‖ p) − 2·JS(p ‖ q): a reverse KL, which tolerates empty data modes",
            "the Wasserstein-1 distance"],
           "c", "Arjovsky and Bottou's identity: with D* held fixed, the non-saturating loss's "
           "gradient is that of the reverse KL minus twice JS. The reverse KL costs nothing "
           "for a data mode the generator leaves empty (mode-seeking), unlike the forward KL "
           "of maximum likelihood, which must cover every mode.",
           "Which divergence does the generator follow?"),
    ),
    6: (
        _q("The evidence lower bound (ELBO) of an image x is ...",
           ["the exact log p(x)",
            "an upper bound on log p(x)",
            "E_q[log p(x | z)] − KL(q(z | x) ‖ p(z)), a lower bound on log p(x)",
            "the discriminator's loss"],
           "c", "Jensen's inequality with the encoder q(z | x) as the averaging distribution "
           "gives the reconstruction term minus the KL regulariser, below log p(x).",
           "The evidence lower bound"),
        _q("The gap between log p(x) and the ELBO is ...",
           ["KL(q(z | x) ‖ p(z | x)), zero when the encoder matches the true posterior",
            "KL(p(z) ‖ q(z | x))",
            "always zero",
            "the reconstruction error"],
           "a", "The same bound as EM's in Chapter 3: there the E-step computes the posterior "
           "exactly and closes the gap; a VAE's encoder can only approximate it.",
           "The evidence lower bound"),
        _q("The reparameterisation trick writes the latent draw as ...",
           ["a draw from the prior p(z), independent of x",
            "z = μ(x) + σ(x) ⊙ ε with ε ~ N(0, I), so that gradients reach the encoder "
            "through the sample",
            "the decoder's mean",
            "the most probable z under q"],
           "b", "Written as a deterministic function of the encoder's outputs and of noise "
           "that does not depend on them, the sample can be back-propagated through; the "
           "gradient estimate has far lower variance than the score-function estimator.",
           "The reparameterisation trick"),
        _q("Why does the encoder output log σ² rather than σ?",
           ["log σ² can be any real number, while σ must be positive",
            "σ is not needed for the KL term",
            "to make the decoder deterministic",
            "log σ² is always smaller than σ"],
           "a", "A network's output is any real number; σ = exp(½ log σ²) is then positive "
           "by construction. Confusing the two is the classic bug of the KL term.",
           "The KL term in closed form"),
        _q("Importance weighting with k draws from the encoder estimates log p(x) by "
           "log (1/k) Σ_i p(z_i) p(x | z_i) / q(z_i | x). This estimate ...",
           ["is unbiased for every k",
            "is biased high and decreases with k",
            "does not depend on k",
            "is biased low; its expectation equals the ELBO's for k = 1, never decreases "
            "with k and tends to log p(x)"],
           "d", "The average inside the logarithm is unbiased for p(x), so by Jensen's "
           "inequality its logarithm is biased low; more draws tighten it.",
           "Estimating the likelihood: importance weighting"),
        _q("Maximum likelihood, which the ELBO bounds, minimises KL(p_data ‖ p_model). "
           "What does this divergence punish most?",
           ["model mass where the data have none",
            "a data mode that the model leaves without mass: the model must cover every "
            "mode, and spreads between them when it cannot fit them all",
            "nothing: it is symmetric",
            "samples that a discriminator can reject"],
           "b", "KL(p_data ‖ p_model) is infinite where the data have mass and the model has "
           "none, so a missed digit costs infinitely much; the model spreads its mass instead, "
           "one reason for the VAE's blur. A GAN is only asked for samples that pass the "
           "discriminator and may drop modes.",
           "Why VAE samples are blurrier than a GAN's"),
        _q("Does a VAE have a discriminator?",
           ["yes, it is trained adversarially like a GAN",
            "no: an encoder and a decoder are trained together on one objective, the ELBO",
            "only the conditional VAE",
            "yes, to estimate the KL term"],
           "b", "There is no second player and no minimax game (erratum 5: the article's "
           "'VAE' is the GAN of §3.2.1, copied).",
           "VAE and GAN"),
    ),
    7: (
        _q("Which of the article's three challenges does recall measure?",
           ["quality", "diversity", "efficiency", "originality"],
           "b", "Recall is the fraction of real digits that the samples cover: diversity. "
           "Precision (samples on the manifold of real digits) measures quality.",
           "Three challenges, made measurable"),
        _q("Why does the comparison show precision and recall as well as FID?",
           ["FID mixes quality and diversity in one number",
            "FID cannot be computed for a GAN",
            "precision and recall are cheaper to compute",
            "FID measures memorisation"],
           "a", "A single score hides which of the two a model is failing at; the table "
           "shows them separately.",
           "Three challenges, made measurable"),
        _q("Why is the memorisation ratio in every row of the comparison?",
           ["it measures the speed of sampling",
            "no score that compares the samples only with the test images sees copying: a "
            "model that returns its training images scores like real data on FID, KID, "
            "precision and recall",
            "it replaces the likelihood",
            "it counts the classes covered"],
           "b", "Originality is the challenge the article does not name; only the distance "
           "to the training set (or the held-out likelihood) exposes a copier.",
           "Three challenges, made measurable"),
        _q("Why can the MRF's bits per pixel not be compared with those of the grey-level "
           "models?",
           ["the MRF has no likelihood",
            "the MRF was not trained on digits",
            "it is measured on binarized digits, bits per binary pixel: a separate scale",
            "its number is always larger"],
           "c", "The MRF lives on binary images, with log Z estimated by annealed importance "
           "sampling; its bits per binary pixel sit on their own scale.",
           "What each family buys, and what it pays"),
    ),
    8: (
        _q("At 28×28, the mean image plus noise scores a higher precision than real images "
           "(0.967 against 0.887). What does that show?",
           ["the mean image is a good generator",
            "the feature network is broken",
            "precision alone cannot tell a sharp model from one that always draws the same "
            "safe image: recall and FID must sit beside it",
            "precision should be maximised first"],
           "c", "Precision is the fraction of samples on the manifold of real images; a "
           "sampler that always draws the same typical image scores high on it and zero on "
           "recall.",
           "The data and the yardstick"),
        _q("On Fashion-MNIST, a diagonal Gaussian mixture with 200 components has worse "
           "held-out bits per pixel than independent per-pixel histograms. Why?",
           ["EM did not converge on 60,000 images",
            "half of the pixels are exactly 0, and a component's one Gaussian per pixel "
            "cannot cover both that value and the garment's grey levels, while a histogram "
            "gives every level its own probability",
            "200 components are too few to fit 60,000 images",
            "the histograms were fitted on the test images"],
           "b", "The black background is a spike at 0 in some of a component's images and "
           "cloth in others; one bell curve per pixel covers both badly. More components "
           "narrow the gap: on the screen the best K, 1,600, stopped 0.05 bits per pixel "
           "short, fitted on all 60,000 images it ties the histograms, and 3,200 overfits.",
           "The Gaussian mixture: the fit scales, the model does not"),
        _q("Why has the pairwise MRF no row in the 28×28 comparison?",
           ["its 307,720 parameters do not fit in memory",
            "log Z cannot be estimated at 784 pixels",
            "its Gibbs chains do not mix: what they produce are not samples of the model",
            "it has no likelihood"],
           "c", "The fit and AIS still run at 28×28; the chains from noise and from data "
           "disagree after 1,000 sweeps (R-hat 2.51), so its 'samples' say nothing about it.",
           "The pairwise MRF: its size and $\\log Z$ are tractable, its fit and its sampler are not"),
        _q("How does the course's convolutional VAE decoder differ from its convolutional "
           "GAN generator?",
           ["it is an MLP", "it uses transposed convolutions",
            "it is the same network, with two outputs per pixel (the parameters of p(x | z)) "
            "instead of one",
            "it has no latent input"],
           "c", "Both are course_lib.convnets.ConvGenerator; the families differ in how the "
           "network is trained, not in what it is.",
           "The VAE: the same networks, mirrored"),
        _q("With one VampPrior shared by all classes, the conditional VAE at 28×28 drew the "
           "class asked for in a minority of its samples in short runs. Why, and what helps?",
           ["the decoder is not given the label",
            "the encoder sees the whole image, so z carries the class and the decoder reads "
            "it from z; a z drawn from a prior shared by the classes has a random class, so "
            "the prior must depend on the label too: p(z | y)",
            "the feature network cannot tell the classes apart",
            "a one-hot label is too small beside 784 pixels to be noticed"],
           "b", "The ELBO makes the decoder prefer y to z as the source of the class only "
           "weakly (at most log 10 nats per image). With conditional_prior=True the prior of class y is the mixture of that "
           "class's pseudo-inputs, so the z of a sample agrees with its label.",
           "The conditional VAE needs a prior per class"),
        _q("A GAN run of 160,000 steps is stopped after 60,000. It is started again from the "
           "saved weights of both networks, with fresh Adam optimisers and the same seed. Is "
           "that the run that never stopped?",
           ["yes: the weights are the whole state of a network",
            "yes, because the seed is the same",
            "only if the learning rate is constant",
            "no: Adam's running moments and step count, the generator's moving average, the "
            "generators' random states and the position in the minibatch stream must come "
            "back too, or the rest of the run takes other steps"],
           "d", "Fresh Adam moments restart the step sizes, the same seed replays the noise "
           "and the batches of step 0 instead of step 60,000, and the sampling network is "
           "the moving average, not the last weights. fit(checkpoint=...) saves all of it, "
           "and the resumed run is then the uninterrupted one to the bit (tests/test_resume.py).",
           "Runs longer than a sitting"),
    ),
}


def chapters() -> tuple[int, ...]:
    """The chapters that have a quiz."""
    return tuple(sorted(QUIZZES))


def _chapter(chapter) -> int:
    if isinstance(chapter, bool) or not isinstance(chapter, int | str):
        raise TypeError(f"chapter must be a chapter number such as 3, got {chapter!r}")
    try:
        number = int(chapter)
    except ValueError:
        raise ValueError(f"chapter={chapter!r}: expected a chapter number, one of "
                         f"{list(chapters())}") from None
    if number not in QUIZZES:
        raise ValueError(f"chapter={chapter!r}: there is no quiz for it; the chapters with a "
                         f"quiz are {list(chapters())}")
    return number


def questions(chapter) -> tuple[Question, ...]:
    """The questions of ``chapter`` (1-8), in order."""
    return QUIZZES[_chapter(chapter)]


def _normalise(answers, n: int) -> list[str | None]:
    """``answers`` as a list of ``n`` lower-case letters or None (unanswered)."""
    if isinstance(answers, str):
        letters = [c for c in answers if not c.isspace() and c not in ",;"]
        items = list(enumerate(letters, 1))
        if len(letters) != n:
            raise ValueError(f"answers={answers!r} has {len(letters)} letters; the quiz has "
                             f"{n} questions (one letter each, e.g. {'a' * n!r})")
    elif isinstance(answers, Mapping):
        bad = [k for k in answers if isinstance(k, bool) or not isinstance(k, int)
               or not 1 <= k <= n]
        if bad:
            raise ValueError(f"answers: question numbers {bad} do not exist; the quiz has "
                             f"questions 1 to {n}")
        items = [(i, answers.get(i)) for i in range(1, n + 1)]
    elif isinstance(answers, Sequence):
        if len(answers) != n:
            raise ValueError(f"answers has {len(answers)} entries; the quiz has {n} "
                             "questions (use None for one you skip)")
        items = list(enumerate(answers, 1))
    else:
        raise TypeError("answers must be a string of letters ('abca'), a list of letters, or "
                        f"a dict {{question number: letter}}; got {type(answers).__name__}")
    out: list[str | None] = []
    for i, a in items:
        if a is None:
            out.append(None)
            continue
        if not isinstance(a, str) or len(a.strip()) != 1:
            raise ValueError(f"answer to question {i} is {a!r}: give one letter, 'a', 'b', ...")
        out.append(a.strip().lower())
    return out


def check(chapter, answers) -> QuizResult:
    """Grade the answers to the quiz of ``chapter``.

    ``answers``: one letter per question, in order, as a string (``"abca"``, spaces and
    commas ignored) or a list (``None`` for a question skipped), or a dict
    ``{question number (from 1): letter}``. Returns a :class:`QuizResult`; printing it shows
    the score and, for every wrong or missing answer, the right reasoning and the section of
    the chapter to read again. Raises ``ValueError`` for an unknown chapter, a wrong number
    of answers or a letter that is not one of the question's choices.
    """
    number = _chapter(chapter)
    qs = QUIZZES[number]
    given = _normalise(answers, len(qs))
    feedback, wrong = [], []
    for i, (q, a) in enumerate(zip(qs, given, strict=True), 1):
        if a is not None and a not in LETTERS[: len(q.choices)]:
            raise ValueError(f"answer to question {i} is {a!r}; its choices are "
                             f"{', '.join(LETTERS[: len(q.choices)])}")
        if a == q.answer:
            feedback.append(f"{i}. ✔ {a}")
            continue
        wrong.append(i)
        said = "not answered" if a is None else f"{a} is not right"
        feedback.append(f"{i}. ✘ {said}. {q.why}\n   Read again: Chapter {number}, "
                        f"section \"{q.section.replace('`', '').replace('$', '')}\".")
    return QuizResult(number, len(qs) - len(wrong), len(qs), tuple(feedback), tuple(wrong))


def to_text(chapter) -> str:
    """The questions of ``chapter`` as plain text (no answers), for a notebook or a handout."""
    number = _chapter(chapter)
    lines = [f"Chapter {number}: answer with one letter per question, e.g. "
             f"quiz.check({number}, \"{'a' * len(QUIZZES[number])}\")"]
    for i, q in enumerate(QUIZZES[number], 1):
        lines.append(f"\n{i}. {q.prompt}")
        lines += [f"   {LETTERS[j]}) {c}" for j, c in enumerate(q.choices)]
    return "\n".join(lines)


def to_markdown(chapter) -> str:
    """The questions of ``chapter`` as Markdown (no answers): the book's static rendering."""
    number = _chapter(chapter)
    parts = []
    for i, q in enumerate(QUIZZES[number], 1):
        parts.append(f"{i}. {q.prompt}\n\n"
                     + "\n".join(f"   {LETTERS[j]}) {c}  " for j, c in enumerate(q.choices)))
    return "\n\n".join(parts) + "\n"


def show(chapter):
    """The quiz of ``chapter`` as ipywidgets: one set of radio buttons per question and a
    *Check* button that prints :func:`check`'s result below. Needs ``ipywidgets`` and a
    running kernel; returns the widget (a ``VBox``)."""
    number = _chapter(chapter)
    try:
        import ipywidgets as w
    except ImportError:  # pragma: no cover - ipywidgets is in requirements.txt
        raise ImportError("quiz.show needs ipywidgets (pip install ipywidgets); without it, "
                          f"print(quiz.to_text({number})) and call quiz.check") from None
    qs = QUIZZES[number]
    radios = []
    rows = []
    for i, q in enumerate(qs, 1):
        options = [(f"{LETTERS[j]}) {c}", LETTERS[j]) for j, c in enumerate(q.choices)]
        radio = w.RadioButtons(options=options, value=None, layout=w.Layout(width="auto"))
        radios.append(radio)
        rows += [w.HTML(f"<b>{i}.</b> {_html(q.prompt)}"), radio]
    result = w.HTML()
    button = w.Button(description="Check", button_style="primary")

    def on_click(_):
        res = check(number, [r.value for r in radios])
        result.value = "<pre style='white-space: pre-wrap'>" + _html(str(res)) + "</pre>"

    button.on_click(on_click)
    box = w.VBox([*rows, button, result])
    box.radios, box.button, box.result = radios, button, result  # for tests and scripting
    return box


def _html(text: str) -> str:
    import html

    return html.escape(text)
