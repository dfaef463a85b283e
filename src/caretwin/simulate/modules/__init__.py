"""The twelve mechanisms of DESIGN section 4, one module each, in the order they act."""

from caretwin.simulate.modules.authorisation import Authorisation
from caretwin.simulate.modules.costs import Costs
from caretwin.simulate.modules.crisis import Crisis
from caretwin.simulate.modules.delivery import Delivery
from caretwin.simulate.modules.demand import Demand
from caretwin.simulate.modules.hospital import Hospital
from caretwin.simulate.modules.housing import Housing
from caretwin.simulate.modules.matching import Matching
from caretwin.simulate.modules.mortality import Mortality
from caretwin.simulate.modules.stability import Stability
from caretwin.simulate.modules.utilisation import Utilisation
from caretwin.simulate.modules.workforce import Workforce

# Weekly hooks run in this order (workforce before delivery: staffing sets the week's missed share);
# daily hooks too: deaths first, then new demand, acute care, then the service queues.
ALL = (Workforce, Housing, Mortality, Demand, Utilisation, Crisis, Hospital, Authorisation, Matching, Delivery,
       Stability, Costs)

__all__ = ["ALL", "Authorisation", "Costs", "Crisis", "Delivery", "Demand", "Hospital", "Housing", "Matching",
           "Mortality", "Stability", "Utilisation", "Workforce"]
