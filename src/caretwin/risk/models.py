"""Risk estimators with scikit-learn's contract: keyword-only hyper-parameters, `fit` returns self,
learned attributes end in `_`, `random_state`."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


class BoostedRisk(ClassifierMixin, BaseEstimator):
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


class LogisticRisk(ClassifierMixin, BaseEstimator):
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
