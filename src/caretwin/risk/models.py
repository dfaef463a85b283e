"""Risk estimators with scikit-learn's contract: keyword-only hyper-parameters, `fit` returns self,
learned attributes end in `_`, `random_state`."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, PoissonRegressor
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


class _Classifier(ClassifierMixin, BaseEstimator):
    def predict(self, X: np.ndarray) -> np.ndarray:
        """The more likely class (risk at or above one half)."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


class BoostedRisk(_Classifier):
    """Gradient-boosted trees, averaged over `n_members` fits that differ in their random feature and
    validation subsets (a small bag steadies the probabilities). Categorical columns are integer codes."""

    def __init__(self, *, n_members: int = 5, learning_rate: float = 0.03, max_leaf_nodes: int = 15,
                 min_samples_leaf: int = 200, l2_regularization: float = 2.0, max_features: float = 0.7,
                 max_iter: int = 800, categorical_features: list[int] | None = None, random_state: int | None = None):
        self.n_members = n_members
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_features = max_features
        self.max_iter = max_iter
        self.categorical_features = categorical_features
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> BoostedRisk:
        base = 0 if self.random_state is None else int(self.random_state)
        self.members_ = []
        for k in range(self.n_members):
            m = HistGradientBoostingClassifier(
                learning_rate=self.learning_rate, max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
                max_features=self.max_features, max_iter=self.max_iter, early_stopping=True,
                validation_fraction=0.15, scoring="roc_auc", n_iter_no_change=40,
                categorical_features=self.categorical_features, random_state=base + k)
            self.members_.append(m.fit(X, y))
        self.classes_ = self.members_[0].classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.mean([m.predict_proba(X) for m in self.members_], axis=0)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-odds of the averaged probability (what Platt scaling recalibrates)."""
        p = np.clip(self.predict_proba(X)[:, 1], 1e-9, 1 - 1e-9)
        return np.log(p / (1 - p))


class LogisticRisk(_Classifier):
    """Penalised logistic regression: numeric columns standardised, categorical columns one-hot."""

    def __init__(self, *, C: float = 0.5, categorical_features: list[int] | None = None, random_state: int | None = None):
        self.C = C
        self.categorical_features = categorical_features
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> LogisticRisk:
        from sklearn.compose import ColumnTransformer

        cat = list(self.categorical_features or [])
        num = [j for j in range(X.shape[1]) if j not in cat]
        prep = ColumnTransformer([("num", StandardScaler(), num),
                                  ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=30), cat)])
        self.pipeline_ = make_pipeline(prep, LogisticRegression(C=self.C, max_iter=2000,
                                                                random_state=self.random_state)).fit(X, y)
        self.classes_ = self.pipeline_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.pipeline_.predict_proba(X)


class CostModel(RegressorMixin, BaseEstimator):
    """Expected cost per person: a Poisson-loss model (log link, so predictions are positive and their mean
    matches the observed mean), either gradient-boosted trees (`kind="boosted"`) or a penalised GLM on
    standardised columns (`kind="linear"`). Costs are mostly zero with a long tail; squared-error loss would
    chase the tail."""

    def __init__(self, *, kind: str = "boosted", learning_rate: float = 0.05, max_leaf_nodes: int = 15,
                 min_samples_leaf: int = 100, max_iter: int = 400, alpha: float = 1e-3, random_state: int | None = None):
        self.kind = kind
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.max_iter = max_iter
        self.alpha = alpha
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> CostModel:
        if self.kind == "boosted":
            self.model_ = HistGradientBoostingRegressor(
                loss="poisson", learning_rate=self.learning_rate, max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf, max_iter=self.max_iter, early_stopping=True,
                validation_fraction=0.15, n_iter_no_change=30, random_state=self.random_state)
        elif self.kind == "linear":
            self.model_ = make_pipeline(StandardScaler(), PoissonRegressor(alpha=self.alpha, max_iter=1000))
        else:
            raise ValueError(f"kind must be 'boosted' or 'linear', not {self.kind!r}")
        self.model_.fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X)


def calibrated(model, X: np.ndarray, y: np.ndarray, groups: np.ndarray, *, method: str = "isotonic",
               folds: int = 3, ensemble: bool = False) -> CalibratedClassifierCV:
    """`model` refitted on folds of persons, each fold's probabilities mapped onto observed rates on the
    persons it did not see (isotonic or Platt), and the folds averaged. Person-grouped folds keep a
    person's other records from flattering the map."""
    cv = list(GroupKFold(n_splits=folds).split(X, y, groups))
    return CalibratedClassifierCV(model, method=method, cv=cv, ensemble=ensemble).fit(X, y)
